//! CPU time and memory of a process, read from /proc (Linux).

use std::time::Duration;

/// `/proc` reports CPU times in clock ticks of `USER_HZ`, which Linux fixes
/// at 100 on every architecture it exports to user space.
const TICKS_PER_SECOND: u64 = 100;

/// What one reading of a process shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// User plus system CPU time used so far.
    pub cpu: Duration,
    /// Resident set size now, in bytes.
    pub rss: u64,
    /// Peak resident set size so far, in bytes.
    pub rss_peak: u64,
}

/// Read the CPU time and memory of process `pid`.
pub fn sample(pid: u32) -> std::io::Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(Sample {
        cpu: cpu_of_stat(&stat).ok_or_else(|| bad(&format!("/proc/{pid}/stat")))?,
        rss: kib_field(&status, "VmRSS:").unwrap_or(0) * 1024,
        rss_peak: kib_field(&status, "VmHWM:").unwrap_or(0) * 1024,
    })
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("unreadable {what}"),
    )
}

/// utime + stime of a `/proc/PID/stat` line. The command name (field 2) is
/// in parentheses and may contain spaces, so fields are counted after its
/// closing parenthesis: utime and stime are fields 14 and 15.
fn cpu_of_stat(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// A `Name:   123 kB` field of `/proc/PID/status`, in KiB.
fn kib_field(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        assert_eq!(cpu_of_stat(stat), Some(Duration::from_secs(3)));
        assert_eq!(cpu_of_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss > 0 && s.rss_peak >= s.rss, "{s:?}");
        let status = "VmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(kib_field(status, "VmRSS:"), Some(1024));
    }
}
