//! Gateway rules taken from Istio's validation: names, hosts, ports, bind
//! addresses and TLS per protocol and mode.

use std::path::Path;

use super::{one, paths, warning_paths};
use crate::error::ErrorKind;
use crate::load::load_str;
use crate::types::Object;

fn gw(servers: &str) -> String {
    format!("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw}}\nspec:\n  servers:\n{servers}")
}

/// One server with `port` and `rest` (flow mapping entries).
/// The errors of a server's own validation, which runs on fields the mesh
/// rejects as not enforced too (that rejection is tested in
/// `unsupported.rs`).
fn server(port: &str, rest: &str) -> Vec<(ErrorKind, String)> {
    paths(&gw(&format!(
        "  - {{port: {port}, hosts: ['*'], {rest}}}\n"
    )))
    .into_iter()
    .filter(|(kind, _)| *kind != ErrorKind::Unsupported)
    .collect()
}

const HTTPS: &str = "{number: 443, name: https, protocol: HTTPS}";
const FILES: &str = "serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem";

fn invalid(path: &str) -> Vec<(ErrorKind, String)> {
    one(ErrorKind::InvalidValue, path)
}

#[test]
fn a_gateway_name_has_no_dots() {
    let yaml = gw("  - {port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}\n")
        .replace("name: gw}", "name: my.gw}");
    assert_eq!(paths(&yaml), invalid("metadata.name"));
}

#[test]
fn port_names_are_unique_and_target_ports_refused() {
    assert_eq!(
        paths(&gw("  - {port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}\n  - {port: {number: 8080, name: http, protocol: HTTP}, hosts: ['*']}\n")),
        invalid("spec.servers[1].port.name")
    );
    assert_eq!(
        server(
            "{number: 80, name: http, protocol: HTTP, targetPort: 8080}",
            ""
        ),
        invalid("spec.servers[0].port.targetPort")
    );
}

#[test]
fn hosts_are_fully_qualified() {
    let host = |h: &str| {
        paths(&gw(&format!(
            "  - {{port: {{number: 80, name: http, protocol: HTTP}}, hosts: ['{h}']}}\n"
        )))
    };
    for ok in [
        "*",
        "prod/*.example.com",
        "./api.example.com",
        "*/a.example.com",
        "198.18.0.5",
    ] {
        assert_eq!(host(ok), vec![], "{ok}");
    }
    for bad in [
        "bookinfo",
        "prod/bookinfo",
        "*foo.example.com",
        "Prod_1/a.example.com",
    ] {
        assert_eq!(host(bad), invalid("spec.servers[0].hosts[0]"), "{bad}");
    }
}

#[test]
fn bind_addresses() {
    assert_eq!(
        server(
            "{number: 0, name: uds, protocol: HTTP}",
            "bind: 'unix:///var/run/gw.sock'"
        ),
        vec![]
    );
    assert_eq!(
        server(
            "{number: 80, name: uds, protocol: HTTP}",
            "bind: 'unix:///var/run/gw.sock'"
        ),
        invalid("spec.servers[0].port.number")
    );
    assert_eq!(
        server(
            "{number: 80, name: http, protocol: HTTP}",
            "bind: localhost"
        ),
        invalid("spec.servers[0].bind")
    );
}

#[test]
fn tls_fits_the_protocol() {
    assert_eq!(
        server(
            "{number: 80, name: http, protocol: HTTP}",
            "tls: {httpsRedirect: true}"
        ),
        vec![]
    );
    assert_eq!(
        server(
            "{number: 80, name: http, protocol: HTTP}",
            &format!("tls: {{mode: SIMPLE, {FILES}}}")
        ),
        invalid("spec.servers[0].tls")
    );
    assert_eq!(
        server(
            "{number: 27017, name: mongo, protocol: MONGO}",
            "tls: {httpsRedirect: true}"
        ),
        invalid("spec.servers[0].tls")
    );
}

#[test]
fn tls_modes_need_their_files() {
    let tls = |settings: &str| server(HTTPS, &format!("tls: {{{settings}}}"));
    let t = "spec.servers[0].tls";
    assert_eq!(tls(&format!("mode: SIMPLE, {FILES}")), vec![]);
    assert_eq!(
        tls("mode: SIMPLE, serverCertificate: /etc/certs/cert.pem"),
        one(ErrorKind::MissingField, &format!("{t}.privateKey"))
    );
    assert_eq!(
        tls(&format!("mode: MUTUAL, {FILES}")),
        one(ErrorKind::MissingField, &format!("{t}.caCertificates"))
    );
    assert_eq!(
        tls("mode: SIMPLE, tlsCertificates: [{serverCertificate: /etc/certs/rsa.pem}]"),
        one(
            ErrorKind::MissingField,
            &format!("{t}.tlsCertificates[0].privateKey")
        )
    );
    assert_eq!(
        tls(&format!(
            "mode: SIMPLE, {FILES}, tlsCertificates: [{{serverCertificate: /a.pem, privateKey: /b.pem}}]"
        )),
        invalid(t),
        "one certificate source"
    );
    assert_eq!(
        tls(&format!("mode: SIMPLE, {FILES}, caCrl: /etc/certs/crl.pem")),
        invalid(&format!("{t}.caCrl"))
    );
    assert_eq!(
        tls(&format!(
            "mode: SIMPLE, {FILES}, minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2"
        )),
        invalid(&format!("{t}.minProtocolVersion"))
    );
}

#[test]
fn tls_warnings() {
    let yaml =
        |port: &str, tls: &str| gw(&format!("  - {{port: {port}, hosts: ['*'], tls: {tls}}}\n"));
    assert_eq!(
        warning_paths(&yaml(HTTPS, &format!("{{mode: PASSTHROUGH, {FILES}}}"))),
        one(ErrorKind::Ineffective, "spec.servers[0].tls")
    );
    assert_eq!(
        warning_paths(&yaml(
            HTTPS,
            &format!("{{mode: SIMPLE, {FILES}, minProtocolVersion: TLSV1_0}}")
        )),
        one(
            ErrorKind::Ineffective,
            "spec.servers[0].tls.minProtocolVersion"
        )
    );
    assert_eq!(
        warning_paths(&yaml(
            HTTPS,
            &format!("{{mode: SIMPLE, {FILES}, httpsRedirect: true}}")
        )),
        one(ErrorKind::Ineffective, "spec.servers[0].tls.httpsRedirect")
    );
}

#[test]
fn protocols_are_read_in_any_case_and_stored_upper_case() {
    let yaml = gw(&format!(
        "  - {{port: {{number: 443, name: https, protocol: https}}, hosts: ['*'], tls: {{mode: SIMPLE, {FILES}}}}}\n"
    ));
    assert_eq!(paths(&yaml), vec![]);
    let (objects, _) = load_str(Path::new("t.yaml"), &yaml);
    let Object::Gateway(g) = &objects[0].object else {
        panic!("a Gateway");
    };
    assert_eq!(
        g.spec.servers[0].port.as_ref().map(|p| p.protocol.as_str()),
        Some("HTTPS")
    );
    assert_eq!(
        server("{number: 80, name: http, protocol: HTTP3}", ""),
        invalid("spec.servers[0].port.protocol")
    );
}
