//! Rule text tests: the exact `iptables-restore` input for the default and
//! customised flags, and reading our state back from `iptables-save`.

use clap::Parser;

use super::rules::{cleanup_script, install_script, NatState};
use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    init: InitConfig,
}

fn parse(args: &[&str]) -> InitConfig {
    let argv = std::iter::once("init").chain(args.iter().copied());
    match Cli::try_parse_from(argv) {
        Ok(cli) => cli.init,
        Err(e) => panic!("flags {args:?} rejected: {e}"),
    }
}

const DEFAULT_INSTALL: &str = "\
*nat
:MESH_INBOUND - [0:0]
:MESH_IN_REDIRECT - [0:0]
:MESH_OUTPUT - [0:0]
:MESH_REDIRECT - [0:0]
-F MESH_INBOUND
-F MESH_IN_REDIRECT
-F MESH_OUTPUT
-F MESH_REDIRECT
-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A PREROUTING -p tcp -j MESH_INBOUND
-A MESH_INBOUND -p tcp --dport 15000 -j RETURN
-A MESH_INBOUND -p tcp --dport 15020 -j RETURN
-A MESH_INBOUND -p tcp --dport 15021 -j RETURN
-A MESH_INBOUND -p tcp --dport 15090 -j RETURN
-A MESH_INBOUND -p tcp -j MESH_IN_REDIRECT
-A OUTPUT -p tcp -j MESH_OUTPUT
-A MESH_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A MESH_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j MESH_IN_REDIRECT
-A MESH_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A MESH_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A MESH_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner 1337 -j MESH_IN_REDIRECT
-A MESH_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A MESH_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A MESH_OUTPUT -d 127.0.0.1/32 -j RETURN
-A MESH_OUTPUT -j MESH_REDIRECT
COMMIT
";

#[test]
fn default_flags_give_istio_shaped_rules() {
    let cfg = parse(&[]);
    assert_eq!(cfg, InitConfig::default());
    assert_eq!(install_script(&cfg, &NatState::default()), DEFAULT_INSTALL);
}

#[test]
fn custom_ports_uid_and_cidrs() {
    let cfg = parse(&[
        "--inbound-ports",
        "9080, 15021,8080",
        "--exclude-inbound-ports",
        "8080",
        "--include-outbound-cidrs",
        "198.18.0.0/15,198.19.1.7,fd00::/8",
        "--exclude-outbound-cidrs",
        "198.18.2.3/24",
        "--exclude-outbound-ports",
        "27017,3306",
        "--inbound-capture-port",
        "16006",
        "--outbound-capture-port",
        "16001",
        "--proxy-uid",
        "2000",
        "--proxy-gid",
        "2001",
    ]);
    let script = install_script(&cfg, &NatState::default());
    let rules: Vec<&str> = script.lines().filter(|l| l.starts_with("-A")).collect();
    assert_eq!(
        rules,
        [
            "-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006",
            "-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 16001",
            "-A PREROUTING -p tcp -j MESH_INBOUND",
            // 15021 is the proxy's, 8080 excluded by flag: only 9080 is captured.
            "-A MESH_INBOUND -p tcp --dport 9080 -j MESH_IN_REDIRECT",
            "-A OUTPUT -p tcp -j MESH_OUTPUT",
            "-A MESH_OUTPUT -p tcp --dport 27017 -j RETURN",
            "-A MESH_OUTPUT -p tcp --dport 3306 -j RETURN",
            "-A MESH_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN",
            "-A MESH_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp --dport 9080 -m owner --uid-owner 2000 -j MESH_IN_REDIRECT",
            "-A MESH_OUTPUT -o lo -m owner ! --uid-owner 2000 -j RETURN",
            "-A MESH_OUTPUT -m owner --uid-owner 2000 -j RETURN",
            "-A MESH_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp --dport 9080 -m owner --gid-owner 2001 -j MESH_IN_REDIRECT",
            "-A MESH_OUTPUT -o lo -m owner ! --gid-owner 2001 -j RETURN",
            "-A MESH_OUTPUT -m owner --gid-owner 2001 -j RETURN",
            "-A MESH_OUTPUT -d 127.0.0.1/32 -j RETURN",
            // Host bits cleared; the IPv6 entry is left out.
            "-A MESH_OUTPUT -d 198.18.2.0/24 -j RETURN",
            "-A MESH_OUTPUT -d 198.18.0.0/15 -j MESH_REDIRECT",
            "-A MESH_OUTPUT -d 198.19.1.7/32 -j MESH_REDIRECT",
        ]
    );
}

#[test]
fn empty_inbound_ports_capture_no_inbound() {
    let cfg = parse(&["--inbound-ports", "", "--include-outbound-cidrs", ""]);
    let script = install_script(&cfg, &NatState::default());
    assert!(!script.contains("PREROUTING"), "{script}");
    assert!(!script.contains("-j MESH_IN_REDIRECT"), "{script}");
    assert!(!script.contains("-j MESH_REDIRECT"), "{script}");
    // The chains still exist so that cleanup and a later init see one shape.
    assert!(script.contains(":MESH_INBOUND - [0:0]"));
}

#[test]
fn bad_flags_are_errors_not_panics() {
    for args in [
        &["--inbound-ports", "80,http"][..],
        &["--exclude-inbound-ports", "70000"],
        &["--exclude-outbound-cidrs", "198.18.0.0/33"],
        &["--include-outbound-cidrs", "example.com"],
        &["--proxy-uid", "-1"],
    ] {
        let argv = std::iter::once("init").chain(args.iter().copied());
        assert!(Cli::try_parse_from(argv).is_err(), "{args:?} accepted");
    }
}

#[test]
fn equal_capture_ports_are_rejected() {
    let cfg = InitConfig {
        inbound_capture_port: 15001,
        dry_run: true,
        ..InitConfig::default()
    };
    assert!(matches!(run(&cfg), Err(InitError::Config(_))));
}

/// What `iptables-save -t nat` prints after an install, plus rules of others.
const SAVED: &str = "\
# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [0:0]
-A INPUT -j MESH_INBOUND
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:MESH_INBOUND - [0:0]
:MESH_IN_REDIRECT - [0:0]
:MESH_OUTPUT - [0:0]
:MESH_REDIRECT - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A PREROUTING -p tcp -j MESH_INBOUND
-A OUTPUT -p tcp -j MESH_OUTPUT
-A OUTPUT -p udp -j MESH_OUTPUT_OTHER
-A DOCKER -i docker0 -g MESH_REDIRECT
-A MESH_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A MESH_INBOUND -p tcp -j MESH_IN_REDIRECT
-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
COMMIT
";

#[test]
fn saved_state_finds_our_chains_and_every_jump_into_them() {
    let state = NatState::parse(SAVED);
    assert_eq!(state.own_chains, OWN_CHAINS);
    assert_eq!(
        state.jumps,
        [
            "-A PREROUTING -p tcp -j MESH_INBOUND",
            "-A OUTPUT -p tcp -j MESH_OUTPUT",
            "-A DOCKER -i docker0 -g MESH_REDIRECT",
        ]
    );
}

#[test]
fn reinstall_deletes_old_jumps_in_the_same_transaction() {
    let script = install_script(&InitConfig::default(), &NatState::parse(SAVED));
    let deletes: Vec<&str> = script.lines().filter(|l| l.starts_with("-D")).collect();
    assert_eq!(
        deletes,
        [
            "-D PREROUTING -p tcp -j MESH_INBOUND",
            "-D OUTPUT -p tcp -j MESH_OUTPUT",
            "-D DOCKER -i docker0 -g MESH_REDIRECT",
        ]
    );
    // Deletes come before the new jumps, and each jump is added once.
    let first_add = script.find("-A PREROUTING").unwrap_or(0);
    assert!(script.find("-D PREROUTING").unwrap_or(usize::MAX) < first_add);
    assert_eq!(script.matches("-A PREROUTING").count(), 1);
}

#[test]
fn cleanup_removes_jumps_then_flushes_and_deletes_chains() {
    let script = cleanup_script(&NatState::parse(SAVED));
    assert_eq!(
        script.as_deref(),
        Some(
            "\
*nat
-D PREROUTING -p tcp -j MESH_INBOUND
-D OUTPUT -p tcp -j MESH_OUTPUT
-D DOCKER -i docker0 -g MESH_REDIRECT
-F MESH_INBOUND
-F MESH_IN_REDIRECT
-F MESH_OUTPUT
-F MESH_REDIRECT
-X MESH_INBOUND
-X MESH_IN_REDIRECT
-X MESH_OUTPUT
-X MESH_REDIRECT
COMMIT
"
        )
    );
}

#[test]
fn cleanup_of_a_clean_table_does_nothing() {
    let clean = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DOCKER\nCOMMIT\n";
    assert_eq!(cleanup_script(&NatState::parse(clean)), None);
}

#[test]
fn cidr_and_list_parsing() {
    let c: Cidr = "198.19.7.9/24".parse().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.to_string(), "198.19.7.0/24");
    let c: Cidr = "0.0.0.0/0".parse().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.to_string(), "0.0.0.0/0");
    let c: Cidr = "fd00::1/8".parse().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.to_string().as_str(), c.is_ipv4()), ("fd00::/8", false));
    assert_eq!("".parse::<List<u16>>(), Ok(List(vec![])));
    assert_eq!(" 1, ,2 ".parse::<List<u16>>(), Ok(List(vec![1, 2])));
    assert_eq!("*".parse::<Selection<u16>>(), Ok(Selection::All));
    assert_eq!("".parse::<Selection<u16>>(), Ok(Selection::Only(vec![])));
}
