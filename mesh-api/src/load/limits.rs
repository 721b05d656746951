//! Size limits of config input, checked before anything is parsed into a
//! tree: a file's bytes, and the bytes its YAML aliases expand to (a
//! billion-laughs document is small on disk and huge once expanded).
//!
//! Part of [`super`] (load). Directory-wide totals are the source's
//! (mesh-pilot counts the bytes of every file it serves).

use yaml_rust2::parser::{Event, Parser};

/// Largest config file read, in bytes (8 MiB). A Kubernetes object is at
/// most 1.5 MiB in etcd; a file of several hundred routing rules is well
/// under this.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Largest a document may grow to when its aliases (`*name`) are expanded,
/// in bytes: the same as a file.
pub const MAX_EXPANDED_BYTES: u64 = MAX_FILE_BYTES;

/// Human form of a byte count: `8 MiB`, `300 KiB`, `17 bytes`.
pub fn bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if n >= MIB && n % MIB == 0 {
        format!("{} MiB", n / MIB)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= KIB {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// Why a document was refused for its aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// 1-based line (of the text given) of the alias that crossed the limit.
    pub line: usize,
    /// What the document had grown to by then.
    pub expanded: u64,
}

/// One open collection while scanning.
struct Open {
    /// Its anchor id (0: not anchored).
    anchor: usize,
    /// Where it starts (characters).
    start: usize,
    /// What aliases inside it add when expanded.
    extra: u64,
}

/// Check that `text` stays within `limit` bytes with every alias expanded
/// as often as it is used (an anchored node's expansion includes the
/// aliases inside it). Syntax errors are left to the parser that follows:
/// the scan stops at the first one.
pub fn check_aliases(text: &str, limit: u64) -> Result<(), Expansion> {
    let mut parser = Parser::new_from_str(text);
    let mut sizes: std::collections::HashMap<usize, u64> = std::collections::HashMap::new();
    let mut open: Vec<Open> = Vec::new();
    let mut total = text.len() as u64;
    while let Ok((event, mark)) = parser.next_token() {
        match event {
            Event::StreamEnd => break,
            Event::Scalar(value, _, anchor, _) if anchor > 0 => {
                sizes.insert(anchor, value.len() as u64);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                open.push(Open {
                    anchor,
                    start: mark.index(),
                    extra: 0,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(done) = open.pop() {
                    if done.anchor > 0 {
                        let own = mark.index().saturating_sub(done.start) as u64;
                        sizes.insert(done.anchor, own.saturating_add(done.extra));
                    }
                }
            }
            Event::Alias(id) => {
                let size = sizes.get(&id).copied().unwrap_or(0);
                total = total.saturating_add(size);
                for frame in open.iter_mut().filter(|f| f.anchor > 0) {
                    frame.extra = frame.extra.saturating_add(size);
                }
                if total > limit {
                    return Err(Expansion {
                        line: mark.line(),
                        expanded: total,
                    });
                }
            }
            Event::DocumentStart => {
                // Anchors are per document.
                sizes.clear();
                open.clear();
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_documents_and_small_aliases_pass() {
        assert_eq!(check_aliases("a: 1\nb: [1, 2]\n", 100), Ok(()));
        let text = "base: &b {x: 1}\none: *b\ntwo: *b\n";
        assert_eq!(check_aliases(text, 1000), Ok(()));
    }

    #[test]
    fn a_big_string_aliased_many_times_is_refused_by_bytes() {
        let big = "x".repeat(1024 * 1024);
        let mut text = format!("a: &big {big}\nlist:\n");
        for _ in 0..200 {
            text.push_str("- *big\n");
        }
        let err = check_aliases(&text, MAX_EXPANDED_BYTES).expect_err("refused");
        assert!(err.expanded > MAX_EXPANDED_BYTES);
        assert!(err.line >= 3, "{err:?}");
    }

    #[test]
    fn nested_laughs_count_their_inner_aliases() {
        // Each level doubles: 2^30 copies of "lol" without the guard.
        let mut text = String::from("l0: &l0 lol\n");
        for i in 1..=30 {
            text.push_str(&format!("l{i}: &l{i} [*l{}, *l{}]\n", i - 1, i - 1));
        }
        let err = check_aliases(&text, 1024 * 1024).expect_err("refused");
        assert!(err.expanded > 1024 * 1024);
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes(8 * 1024 * 1024), "8 MiB");
        assert_eq!(bytes(300 * 1024), "300 KiB");
        assert_eq!(bytes(17), "17 bytes");
    }
}
