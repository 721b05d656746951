//! Policies over one subset: order, weights, least request, hashing,
//! slow start.

use std::time::Duration;

use super::*;

fn host(port: u16, weight: u32) -> Host {
    Host {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        weight,
        active: Arc::default(),
        added: None,
    }
}

fn ports(all: &[Host], subset: &Subset, policy: LbPolicy, n: usize) -> Vec<u16> {
    let lb = LbConfig::default();
    (0..n)
        .map(|_| {
            let i = subset
                .pick(all, policy, &lb, None, Some(Instant::now()))
                .unwrap();
            all[i].address.port()
        })
        .collect()
}

fn everything(all: &[Host]) -> Subset {
    Subset::new(all, (0..all.len()).collect())
}

#[test]
fn round_robin_cycles_in_order() {
    let all = [host(1, 1), host(2, 1), host(3, 1)];
    let subset = everything(&all);
    assert_eq!(
        ports(&all, &subset, LbPolicy::RoundRobin, 6),
        [1, 2, 3, 1, 2, 3]
    );
}

#[test]
fn round_robin_honours_weights_smoothly() {
    let all = [host(1, 5), host(2, 1), host(3, 1)];
    let subset = everything(&all);
    let picks = ports(&all, &subset, LbPolicy::RoundRobin, 7);
    assert_eq!(picks, [1, 1, 2, 1, 3, 1, 1]);
}

#[test]
fn round_robin_position_survives_a_new_host_list() {
    let all = [host(1, 1), host(2, 1), host(3, 1)];
    let subset = everything(&all);
    assert_eq!(ports(&all, &subset, LbPolicy::RoundRobin, 1), [1]);
    let again = [host(1, 1), host(2, 1), host(3, 1)];
    let next = everything(&again);
    next.continue_from(&subset, &all, &again);
    assert_eq!(ports(&again, &next, LbPolicy::RoundRobin, 2), [2, 3]);
}

#[test]
fn empty_subset_picks_nothing() {
    let all = [host(1, 1)];
    let empty = Subset::new(&all, vec![]);
    let lb = LbConfig::default();
    for policy in [
        LbPolicy::RoundRobin,
        LbPolicy::LeastRequest,
        LbPolicy::RingHash,
        LbPolicy::Maglev,
    ] {
        assert!(empty
            .pick(&all, policy, &lb, None, Some(Instant::now()))
            .is_none());
    }
}

#[test]
fn random_honours_weights() {
    let all = [host(1, 3), host(2, 1)];
    let subset = everything(&all);
    let picks = ports(&all, &subset, LbPolicy::Random, 4000);
    let ones = picks.iter().filter(|p| **p == 1).count();
    assert!((2700..3300).contains(&ones), "{ones} of 4000");
}

#[test]
fn least_request_avoids_the_busy_host_and_counts_choices() {
    let all = [host(1, 1), host(2, 1)];
    all[0].active.store(10, Ordering::Relaxed);
    let subset = everything(&all);
    // With two hosts both are always compared, so the idle one wins.
    let picks = ports(&all, &subset, LbPolicy::LeastRequest, 50);
    assert!(picks.iter().all(|p| *p == 2), "{picks:?}");
    // With choice_count = number of hosts, the least loaded of many wins
    // nearly always (each draw may repeat a host).
    let many: Vec<Host> = (1..=4).map(|p| host(p, 1)).collect();
    for h in &many[..3] {
        h.active.store(5, Ordering::Relaxed);
    }
    let subset = everything(&many);
    let lb = LbConfig {
        choice_count: 16,
        ..LbConfig::default()
    };
    let idle = (0..200)
        .filter(|_| {
            let i = subset
                .pick(
                    &many,
                    LbPolicy::LeastRequest,
                    &lb,
                    None,
                    Some(Instant::now()),
                )
                .unwrap();
            i == 3
        })
        .count();
    assert!(idle > 190, "{idle} of 200");
}

#[test]
fn hashing_policies_stick_to_a_key_and_spread_keys() {
    let all: Vec<Host> = (1..=5).map(|p| host(p, 1)).collect();
    let lb = LbConfig::default();
    for policy in [LbPolicy::RingHash, LbPolicy::Maglev] {
        let subset = everything(&all);
        let pick = |key: u64| {
            subset
                .pick(&all, policy, &lb, Some(key), Some(Instant::now()))
                .unwrap()
        };
        for key in [1u64, 99, 12345, u64::MAX] {
            let first = pick(key);
            assert!((0..20).all(|_| pick(key) == first), "{policy:?} sticky");
        }
        let mut seen = [0usize; 5];
        for key in 0..5000u64 {
            seen[pick(xxhash_rust::xxh64::xxh64(&key.to_le_bytes(), 0))] += 1;
        }
        assert!(
            seen.iter().all(|n| (600..1400).contains(n)),
            "{policy:?} {seen:?}"
        );
        // Without a key: random, so both hosts come up.
        let without: std::collections::HashSet<usize> = (0..200)
            .map(|_| {
                subset
                    .pick(&all, policy, &lb, None, Some(Instant::now()))
                    .unwrap()
            })
            .collect();
        assert!(without.len() > 1);
    }
}

#[tokio::test(start_paused = true)]
async fn slow_start_ramps_a_new_host_up_over_the_window() {
    let mut fresh = host(2, 1);
    fresh.added = Some(Instant::now());
    let all = [host(1, 1), fresh];
    let slow = SlowStart {
        window: Duration::from_secs(100),
        aggression: 1.0,
        min_weight: 0.1,
    };
    let lb = LbConfig {
        slow_start: Some(slow.clone()),
        ..LbConfig::default()
    };
    let share = |subset: &Subset| {
        let picks = (0..1000)
            .filter(|_| {
                subset
                    .pick(&all, LbPolicy::RoundRobin, &lb, None, Some(Instant::now()))
                    .unwrap()
                    == 1
            })
            .count();
        picks as f64 / 1000.0
    };
    let subset = everything(&all);
    // At first the minimum weight: 0.1 / 1.1 of the picks.
    assert!((0.07..0.11).contains(&share(&subset)), "{}", share(&subset));
    assert_eq!(slow_start_factor(&all[1], &slow, Instant::now()), 0.1);
    tokio::time::advance(Duration::from_secs(50)).await;
    assert!((slow_start_factor(&all[1], &slow, Instant::now()) - 0.5).abs() < 1e-9);
    let half = share(&subset);
    assert!((0.30..0.37).contains(&half), "{half}");
    // Aggression 2: sqrt of the time factor.
    let aggressive = SlowStart {
        aggression: 2.0,
        ..slow.clone()
    };
    let f = slow_start_factor(&all[1], &aggressive, Instant::now());
    assert!((f - 0.5f64.sqrt()).abs() < 1e-9, "{f}");
    tokio::time::advance(Duration::from_secs(50)).await;
    assert_eq!(slow_start_factor(&all[1], &slow, Instant::now()), 1.0);
    assert!((0.48..0.52).contains(&share(&subset)));
}
