//! Consistent hashing for the cluster stage's RING_HASH and MAGLEV
//! policies: lookup tables built once per set of healthy hosts, mapping a
//! request's hash key to a host. Hosts are hashed by their address with
//! xxHash64, so every proxy builds the same table for the same hosts and a
//! host's place does not depend on the order EDS lists them in.

use std::net::SocketAddr;

use xxhash_rust::xxh64::xxh64;

/// A Ketama-style ring: each host owns points in proportion to its weight.
#[derive(Debug)]
pub struct Ring {
    /// `(point, index into the subset's hosts)`, sorted by point.
    points: Vec<(u64, u32)>,
}

impl Ring {
    /// A ring over `hosts` (address and weight), sized as Envoy sizes it:
    /// enough points that the lightest host gets at least one per
    /// `min_size`, capped at `max_size`.
    pub fn new(hosts: &[(SocketAddr, u32)], min_size: u64, max_size: u64) -> Ring {
        let total: f64 = hosts.iter().map(|(_, w)| f64::from(*w)).sum();
        if hosts.is_empty() || total <= 0.0 {
            return Ring { points: Vec::new() };
        }
        let min_weight = hosts
            .iter()
            .map(|(_, w)| f64::from(*w) / total)
            .fold(f64::MAX, f64::min);
        let scale = ((min_weight * min_size as f64).ceil() / min_weight).min(max_size as f64);
        let mut points = Vec::with_capacity(scale as usize + hosts.len());
        let mut target = 0.0;
        let mut placed = 0u64;
        for (index, (address, weight)) in hosts.iter().enumerate() {
            let key = address.to_string();
            target += scale * f64::from(*weight) / total;
            let mut replica = 0u64;
            while (placed as f64) < target.floor() {
                let point = xxh64(format!("{key}_{replica}").as_bytes(), 0);
                points.push((point, index as u32));
                replica += 1;
                placed += 1;
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// The host owning `hash`: the first point at or after it, wrapping.
    pub fn pick(&self, hash: u64) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let at = self.points.partition_point(|(point, _)| *point < hash);
        let (_, index) = self.points[at % self.points.len()];
        Some(index as usize)
    }

    /// Points on the ring.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the ring has no point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Maglev's lookup table (Eisenbud et al.), weighted as Envoy weights it:
/// a host takes its next preferred slot only while its share of the table
/// is behind its share of the weight.
#[derive(Debug)]
pub struct Maglev {
    table: Vec<u32>,
}

impl Maglev {
    /// A table of `size` slots (a prime) over `hosts`.
    pub fn new(hosts: &[(SocketAddr, u32)], size: u64) -> Maglev {
        if hosts.is_empty() || size == 0 {
            return Maglev { table: Vec::new() };
        }
        let size_usize = size as usize;
        let max_weight = hosts.iter().map(|(_, w)| *w).max().unwrap_or(1).max(1);
        struct Entry {
            offset: u64,
            skip: u64,
            next: u64,
            weight: f64,
            target: f64,
        }
        let mut entries: Vec<Entry> = hosts
            .iter()
            .map(|(address, weight)| {
                let key = address.to_string();
                Entry {
                    offset: xxh64(key.as_bytes(), 0) % size,
                    skip: xxh64(key.as_bytes(), 1) % (size - 1).max(1) + 1,
                    next: 0,
                    weight: f64::from(*weight) / f64::from(max_weight),
                    target: f64::from(*weight) / f64::from(max_weight),
                }
            })
            .collect();
        let mut table = vec![u32::MAX; size_usize];
        let mut filled = 0usize;
        let mut iteration = 1u64;
        while filled < size_usize {
            for (index, entry) in entries.iter_mut().enumerate() {
                if filled == size_usize {
                    break;
                }
                // Lighter hosts sit out rounds until their share catches up.
                if (iteration as f64) * entry.weight < entry.target {
                    continue;
                }
                entry.target += 1.0;
                loop {
                    let slot = ((entry.offset + entry.next * entry.skip) % size) as usize;
                    entry.next += 1;
                    if table[slot] == u32::MAX {
                        table[slot] = index as u32;
                        filled += 1;
                        break;
                    }
                }
            }
            iteration += 1;
        }
        Maglev { table }
    }

    /// The host of `hash`'s slot.
    pub fn pick(&self, hash: u64) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        Some(self.table[(hash % self.table.len() as u64) as usize] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: u16, weight: impl Fn(u16) -> u32) -> Vec<(SocketAddr, u32)> {
        (1..=n)
            .map(|i| (SocketAddr::from(([127, 0, 0, 1], 9000 + i)), weight(i)))
            .collect()
    }

    fn shares(pick: impl Fn(u64) -> Option<usize>, n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for key in 0..20_000u64 {
            let hash = xxh64(&key.to_le_bytes(), 7);
            counts[pick(hash).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn ring_spreads_by_weight_and_moves_few_keys_when_a_host_leaves() {
        let four = hosts(4, |i| if i == 1 { 2 } else { 1 });
        let ring = Ring::new(&four, 1024, 8 << 20);
        assert!(ring.len() >= 1024);
        let counts = shares(|h| ring.pick(h), 4);
        // Host 1 has 2/5 of the weight, the others 1/5 each.
        assert!((7_000..9_000).contains(&counts[0]), "{counts:?}");
        for c in &counts[1..] {
            assert!((3_000..5_000).contains(c), "{counts:?}");
        }
        // Dropping the last host moves few of the other hosts' keys (only
        // the ring's rescaling moves any).
        let three = Ring::new(&four[..3], 1024, 8 << 20);
        let moved = (0..5_000u64)
            .map(|k| xxh64(&k.to_le_bytes(), 7))
            .filter(|h| ring.pick(*h) != Some(3) && ring.pick(*h) != three.pick(*h))
            .count();
        assert!(moved < 750, "{moved} of 5000 keys moved");
    }

    #[test]
    fn maglev_fills_the_table_by_weight_and_is_stable() {
        let three = hosts(3, |i| if i == 3 { 2 } else { 1 });
        let maglev = Maglev::new(&three, 65537);
        let counts = shares(|h| maglev.pick(h), 3);
        assert!((4_000..6_000).contains(&counts[0]), "{counts:?}");
        assert!((8_500..11_500).contains(&counts[2]), "{counts:?}");
        let again = Maglev::new(&three, 65537);
        for key in 0..1000u64 {
            assert_eq!(maglev.pick(key), again.pick(key));
        }
        assert!(Maglev::new(&[], 65537).pick(1).is_none());
    }
}
