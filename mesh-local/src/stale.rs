//! Leftovers of killed runs: a run killed midway (SIGKILL, a CI timeout, a
//! crashed `meshctl local up`) never reaches its teardown. Every name a run makes starts with
//! `TAG<pid>x`, so anything carrying that prefix whose pid no longer runs is
//! a leftover of this suite and nothing else; runs of live processes
//! (parallel tests of this binary, another suite run) are never touched.

use std::collections::BTreeSet;
use std::path::Path;

use crate::cmd::Cmd;
use crate::net::{ip, netns_pids, prefix_pid};
use crate::process::{alive, all_run_tags, kill_tagged, kill_until_gone};
use crate::{LocalError, ETC_NETNS, RUN_ROOT};

/// Removes the processes, network namespaces, links, FORWARD rules,
/// `/etc/netns` entries and run directories of dead runs whose prefix starts
/// with `tag` (`mesh` for meshctl, `e2e` for the e2e suite). Returns what it
/// removed.
pub fn cleanup_stale(tag: &str) -> Result<Vec<String>, LocalError> {
    if tag.is_empty() {
        return Err(LocalError::Invalid(
            "an empty tag would match too much".into(),
        ));
    }
    let dead = |name: &str| prefix_pid(name, tag).is_some_and(|pid| !alive(pid));
    cleanup_where(dead)
}

/// Removes everything of the one run `prefix` (as [`cleanup_stale`] does
/// for dead runs), whether or not the process that made it still exists:
/// for a caller that knows the run is over (meshctl's `local down` after
/// its `local up` died, which may linger as a zombie).
pub fn cleanup_run(prefix: &str) -> Result<Vec<String>, LocalError> {
    let tag = &prefix[..prefix.find(|c: char| c.is_ascii_digit()).unwrap_or(0)];
    if tag.is_empty() || prefix_pid(prefix, tag).is_none() {
        return Err(LocalError::Invalid(format!(
            "{prefix:?} is not a run prefix (TAG<pid>x<n>)"
        )));
    }
    let ours = |name: &str| {
        name.strip_prefix(prefix).is_some_and(|rest| {
            rest.is_empty()
                || rest.starts_with('-')
                || rest == "br"
                || rest
                    .strip_prefix('v')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric()))
        })
    };
    cleanup_where(ours)
}

/// Removes processes, namespaces, links, FORWARD rules, `/etc/netns`
/// entries and run directories whose run prefix `dead` accepts.
fn cleanup_where(dead: impl Fn(&str) -> bool) -> Result<Vec<String>, LocalError> {
    let mut removed = Vec::new();

    let netns: Vec<String> = ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| dead(n))
        .map(String::from)
        .collect();
    let runs: BTreeSet<String> = all_run_tags()
        .into_iter()
        .map(|(_, run)| run)
        .filter(|run| dead(run))
        .collect();
    for run in &runs {
        kill_tagged(run);
        removed.push(format!("processes of run {run}"));
    }
    kill_until_gone(|| netns_pids(&netns));
    // Concurrent cleanups (parallel tests) may race us to each item: what
    // is already gone is not an error.
    for ns in netns {
        if ip(&["netns", "del", &ns]).is_ok() {
            removed.push(format!("netns {ns}"));
        }
    }

    for link in link_names()?.into_iter().filter(|l| dead(l)) {
        // A veth may have gone with its peer's namespace a moment ago.
        if ip(&["link", "del", &link]).is_ok() {
            removed.push(format!("link {link}"));
        }
    }
    removed.extend(remove_forward_rules(&dead));
    for root in [ETC_NETNS, RUN_ROOT] {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if dead(&name) {
                let path = Path::new(root).join(&name);
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => removed.push(path.display().to_string()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(LocalError::io(&path)(e)),
                }
            }
        }
    }
    Ok(removed)
}

/// Names of all links of the root namespace (`eth0`, not `eth0@if3`).
fn link_names() -> Result<Vec<String>, LocalError> {
    Ok(ip(&["-o", "link", "show"])?
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect())
}

/// Deletes FORWARD rules commented with a dead run's prefix.
fn remove_forward_rules(dead: impl Fn(&str) -> bool) -> Vec<String> {
    let Ok(rules) = Cmd::new("iptables").args(["-S", "FORWARD"]).run() else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for rule in rules.lines() {
        let words: Vec<&str> = rule.split_whitespace().collect();
        let comment = words
            .windows(2)
            .find(|w| w[0] == "--comment")
            .map(|w| w[1].trim_matches('"'));
        if words.first() == Some(&"-A") && comment.is_some_and(&dead) {
            let delete = Cmd::new("iptables")
                .arg("-D")
                .args(words[1..].iter().copied());
            if delete.run().is_ok() {
                removed.push(format!("iptables rule {rule}"));
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    #[test]
    fn cleanup_run_refuses_what_is_not_a_run_prefix() {
        for prefix in ["", "eth0", "mesh", "mesh12", "12x1", "docker0"] {
            assert!(super::cleanup_run(prefix).is_err(), "{prefix:?}");
        }
    }
}
