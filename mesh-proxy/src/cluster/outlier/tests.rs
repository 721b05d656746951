//! Ejection by consecutive failures, return at the sweep, caps, success rate.

use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn config() -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: 3,
        base_ejection_time: Duration::from_secs(30),
        interval: Duration::from_secs(10),
        max_ejection_percent: 100,
        ..OutlierDetection::default()
    }
}

#[tokio::test(start_paused = true)]
async fn consecutive_5xx_ejects_and_the_sweep_after_expiry_returns_it() {
    let detector = Detector::default();
    let c = config();
    detector.sync(Some(&c));
    for _ in 0..2 {
        detector.report(addr(1), Outcome::Status(500), 2);
    }
    assert!(!detector.is_ejected(addr(1)));
    // A success in between resets the run.
    detector.report(addr(1), Outcome::Status(200), 2);
    tokio::time::advance(Duration::from_secs(5)).await;
    for _ in 0..3 {
        detector.report(addr(1), Outcome::Status(503), 2);
    }
    assert!(detector.is_ejected(addr(1)));
    // Expires at 35 s, but only the sweep at 40 s lets it back.
    tokio::time::advance(Duration::from_secs(30)).await;
    detector.sync(Some(&c));
    assert!(detector.is_ejected(addr(1)));
    tokio::time::advance(Duration::from_secs(5)).await;
    detector.sync(Some(&c));
    assert!(!detector.is_ejected(addr(1)));
    // Ejected again at once: twice the base time now.
    for _ in 0..3 {
        detector.report(addr(1), Outcome::ConnectFailure, 2);
    }
    assert!(detector.is_ejected(addr(1)));
    tokio::time::advance(Duration::from_secs(50)).await;
    detector.sync(Some(&c));
    assert!(detector.is_ejected(addr(1)), "60 s this time");
    tokio::time::advance(Duration::from_secs(20)).await;
    detector.sync(Some(&c));
    assert!(!detector.is_ejected(addr(1)));
}

#[tokio::test(start_paused = true)]
async fn max_ejection_percent_caps_ejections_but_one_is_always_allowed() {
    let detector = Detector::default();
    let c = OutlierDetection {
        max_ejection_percent: 10,
        ..config()
    };
    detector.sync(Some(&c));
    for port in 1..=3 {
        for _ in 0..3 {
            detector.report(addr(port), Outcome::Status(500), 3);
        }
    }
    let ejected = (1..=3).filter(|p| detector.is_ejected(addr(*p))).count();
    assert_eq!(ejected, 1, "10% of 3 hosts still ejects one, and only one");
}

#[tokio::test(start_paused = true)]
async fn gateway_failures_and_local_origin_split() {
    let detector = Detector::default();
    // Gateway failures enforced, plain 5xx threshold out of reach.
    let c = OutlierDetection {
        consecutive_5xx: 100,
        consecutive_gateway_failure: 2,
        enforcing_consecutive_gateway_failure: 100,
        ..config()
    };
    detector.sync(Some(&c));
    detector.report(addr(1), Outcome::Status(500), 4);
    detector.report(addr(1), Outcome::Status(502), 4);
    assert!(!detector.is_ejected(addr(1)), "500 breaks the gateway run");
    detector.report(addr(1), Outcome::Reset, 4);
    assert!(detector.is_ejected(addr(1)), "a reset is a gateway failure");

    let split = OutlierDetection {
        split_local_origin: true,
        consecutive_local_origin_failure: 2,
        ..config()
    };
    detector.sync(Some(&split));
    detector.report(addr(2), Outcome::Status(500), 4);
    detector.report(addr(2), Outcome::ConnectFailure, 4);
    detector.report(addr(2), Outcome::Status(500), 4);
    assert!(!detector.is_ejected(addr(2)));
    detector.report(addr(2), Outcome::Timeout, 4);
    assert!(detector.is_ejected(addr(2)), "two local-origin failures");
}

#[tokio::test(start_paused = true)]
async fn success_rate_ejects_the_outlier_at_the_sweep() {
    let detector = Detector::default();
    let c = OutlierDetection {
        consecutive_5xx: 1000,
        success_rate: crate::model::SuccessRate {
            enforcing: 100,
            minimum_hosts: 3,
            request_volume: 10,
            stdev_factor: 1000,
        },
        ..config()
    };
    detector.sync(Some(&c));
    for port in 1..=4 {
        for i in 0..20 {
            let failing = port == 4 && i % 2 == 0;
            let status = if failing { 500 } else { 200 };
            detector.report(addr(port), Outcome::Status(status), 4);
        }
    }
    assert!(!detector.is_ejected(addr(4)));
    tokio::time::advance(Duration::from_secs(10)).await;
    detector.sync(Some(&c));
    assert!(detector.is_ejected(addr(4)));
    assert!(!detector.is_ejected(addr(1)));
}
