//! Are the ports a local mesh needs free, and if not, who holds them:
//! `meshctl local up` checks every address it will listen on before it
//! starts anything, and names the port and the process in the way.
//!
//! A leaf: the holder is found the way `ss -ltnp` finds it, from the
//! listening socket's inode in `/proc/net/tcp{,6}` and the process whose
//! file descriptors include that socket.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;

/// A port that is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// The address we need.
    pub address: SocketAddr,
    /// What is on it, when it can be told: `pid 1234 (nginx: nginx -g ...)`.
    pub holder: Option<String>,
    /// The bind error.
    pub error: String,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is in use", self.address)?;
        match &self.holder {
            Some(holder) => write!(f, " by {holder}"),
            None => write!(f, " ({})", self.error),
        }
    }
}

/// The addresses of `wanted` that cannot be bound now, each with its holder
/// where it can be found. Binding is the only exact test (another process
/// may listen on 0.0.0.0 or the address itself); the socket is closed at
/// once.
pub fn busy(wanted: &[SocketAddr]) -> Vec<Busy> {
    let mut out = Vec::new();
    for &address in wanted {
        if let Err(error) = TcpListener::bind(address) {
            out.push(Busy {
                address,
                holder: holder(address.port()),
                error: error.to_string(),
            });
        }
    }
    out
}

/// The process listening on TCP `port` (any address), as
/// `pid N (COMMAND LINE)`.
pub fn holder(port: u16) -> Option<String> {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| listening_inodes(&text, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| wanted.iter().any(|w| Path::new(w) == target))
        });
        if holds {
            return Some(describe(pid));
        }
    }
    None
}

fn describe(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    // Arguments are NUL-separated and may hold newlines: one line, with
    // single spaces.
    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > 120 {
        let mut end = 117;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str("...");
    }
    if line.is_empty() {
        line = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
    }
    format!("pid {pid} ({line})")
}

/// Inodes of the sockets in a `/proc/net/tcp` table listening on `port`.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let inode = fields.get(9)?.parse::<u64>().ok()?;
            let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (*state == LISTEN && local_port == port && inode != 0).then_some(inode)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_use_is_found_with_its_process() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = taken.local_addr().expect("addr");
        let free = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let found = busy(&[address, free]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].address, address);
        let holder = found[0].holder.as_deref().expect("the holder is found");
        assert!(
            holder.starts_with(&format!("pid {} (", std::process::id())),
            "{holder}"
        );
        assert!(found[0].to_string().contains(&address.to_string()));
    }

    #[test]
    fn reads_listening_sockets_of_a_proc_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 8080), vec![12345]);
        assert!(listening_inodes(table, 8081).is_empty());
    }
}
