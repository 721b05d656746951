//! Priority loads, spill-over, panic and locality weights.

use std::net::SocketAddr;
use std::sync::Arc;

use super::*;
use crate::model::{Endpoint, LbPolicy, LocalityLb, DEFAULT_OVERPROVISIONING_FACTOR};

fn endpoint(port: u16, priority: u32, locality: usize, healthy: bool) -> Endpoint {
    Endpoint {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        weight: 1,
        healthy,
        priority,
        locality,
    }
}

fn assignment(endpoints: Vec<Endpoint>, localities: Vec<LocalityLb>) -> LoadAssignment {
    LoadAssignment {
        cluster_name: "c".into(),
        endpoints,
        localities,
        overprovisioning_factor: DEFAULT_OVERPROVISIONING_FACTOR,
    }
}

fn build(a: &LoadAssignment, ejected: &[bool], lb: &LbConfig) -> HostSet {
    let hosts = a
        .endpoints
        .iter()
        .map(|e| Host {
            address: e.address,
            weight: e.weight,
            active: Arc::default(),
            added: None,
        })
        .collect();
    HostSet::build(a, hosts, ejected, lb, None)
}

fn two_priorities(healthy_in_p0: usize) -> LoadAssignment {
    let mut endpoints: Vec<Endpoint> = (0..4)
        .map(|i| endpoint(i as u16 + 1, 0, 0, i < healthy_in_p0))
        .collect();
    endpoints.extend((0..4).map(|i| endpoint(i + 11, 1, 0, true)));
    assignment(endpoints, vec![LocalityLb::default()])
}

#[test]
fn load_spills_to_the_next_priority_as_health_drops() {
    let lb = LbConfig::default();
    let none_ejected = [false; 8];
    // 3 of 4 healthy: 140% × 75% = 105% → priority 0 takes everything.
    let set = build(&two_priorities(3), &none_ejected, &lb);
    assert_eq!(set.loads(), [(0, 100, false), (1, 0, false)]);
    // 2 of 4: 70% to priority 0, 30% spills to priority 1.
    let set = build(&two_priorities(2), &none_ejected, &lb);
    assert_eq!(set.loads(), [(0, 70, false), (1, 30, false)]);
    let p1 = (0..1000)
        .filter(|_| {
            let subset = set.select(None).unwrap();
            set.hosts[subset
                .pick(&set.hosts, LbPolicy::RoundRobin, &lb, None, None)
                .unwrap()]
            .address
            .port()
                > 10
        })
        .count();
    assert!((230..370).contains(&p1), "{p1} of 1000 to priority 1");
    // Ejected hosts count as unhealthy too.
    let mut ejected = none_ejected;
    ejected[0] = true;
    ejected[1] = true;
    let set = build(&two_priorities(4), &ejected, &lb);
    assert_eq!(set.loads(), [(0, 70, false), (1, 30, false)]);
}

#[test]
fn panic_balances_over_all_hosts_only_when_total_health_is_short() {
    let lb = LbConfig::default();
    // One priority, 1 of 4 healthy: total health 35% < 100 and 25% < 50%:
    // panic, every host is a candidate.
    let a = assignment(
        (0..4).map(|i| endpoint(i + 1, 0, 0, i == 0)).collect(),
        vec![LocalityLb::default()],
    );
    let set = build(&a, &[false; 4], &lb);
    assert_eq!(set.loads(), [(0, 100, true)]);
    assert_eq!(set.select(None).unwrap().hosts.len(), 4);
    // Threshold 0 disables panic: only the healthy host.
    let off = LbConfig {
        healthy_panic_threshold: 0.0,
        ..LbConfig::default()
    };
    let set = build(&a, &[false; 4], &off);
    assert_eq!(set.loads(), [(0, 100, false)]);
    assert_eq!(set.select(None).unwrap().hosts, [0]);
    // Priority 0 at 25% but priority 1 healthy: total health 100%, no
    // panic; all load goes where hosts are healthy.
    let set = build(&two_priorities(1), &[false; 8], &lb);
    assert_eq!(set.loads(), [(0, 35, false), (1, 65, false)]);
    // Every host ejected, panic off: nothing to pick.
    let set = build(&a, &[true; 4], &off);
    assert!(set.select(None).unwrap().is_empty());
}

#[test]
fn locality_weights_times_health_choose_the_locality() {
    let localities = vec![
        LocalityLb {
            zone: "a".into(),
            weight: 3,
            ..LocalityLb::default()
        },
        LocalityLb {
            zone: "b".into(),
            weight: 1,
            ..LocalityLb::default()
        },
        LocalityLb {
            zone: "unweighted".into(),
            weight: 0,
            ..LocalityLb::default()
        },
    ];
    let endpoints = vec![
        endpoint(1, 0, 0, true),
        endpoint(2, 0, 0, true),
        endpoint(3, 0, 1, true),
        endpoint(4, 0, 2, true),
    ];
    let a = assignment(endpoints, localities);
    let lb = LbConfig {
        locality_weighted: true,
        ..LbConfig::default()
    };
    let set = build(&a, &[false; 4], &lb);
    let mut zone_a = 0;
    for _ in 0..400 {
        let subset = set.select(None).unwrap();
        let i = subset
            .pick(&set.hosts, LbPolicy::RoundRobin, &lb, None, None)
            .unwrap();
        let port = set.hosts[i].address.port();
        assert_ne!(port, 4, "a locality without weight takes no traffic");
        if port <= 2 {
            zone_a += 1;
        }
    }
    assert_eq!(zone_a, 300, "3:1, exactly, by smooth round robin");
    // Half of zone a unhealthy: 140% × 50% = 70% → weight 3 × 70 = 210
    // against 1 × 100.
    let mut half = a.clone();
    half.endpoints[1].healthy = false;
    let set = build(&half, &[false; 4], &lb);
    let zone_a = (0..310)
        .filter(|_| {
            let subset = set.select(None).unwrap();
            subset
                .hosts
                .iter()
                .all(|&i| set.hosts[i].address.port() <= 2)
        })
        .count();
    assert_eq!(zone_a, 210);
}
