//! The first bytes of a connection, as protocol detection peeks them: the
//! TLS ClientHello reader (`detect::tls::parse`) and the classifier that
//! tells TLS, HTTP/1.x, h2c and everything else apart (`detect::classify`).
//! Any bytes may come from the network, so every input must give an answer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_proxy::listener::detect::{classify, tls, Sniff, TLS};

fuzz_target!(|data: &[u8]| {
    let hello = tls::parse(data);
    if let Ok(hello) = &hello {
        if let Some(name) = &hello.server_name {
            assert_eq!(*name, name.to_ascii_lowercase(), "SNI is lower-cased");
        }
    }
    let _ = tls::looks_like_tls(data);

    // While more bytes may come, any answer is fine.
    let _ = classify(data, false);
    // With the last bytes seen, detection must decide (it never waits on
    // a connection that has nothing more to give).
    match classify(data, true) {
        Sniff::NeedMore => panic!("classify(_, last: true) asked for more"),
        Sniff::Done(detected) => {
            if detected.transport_protocol == TLS {
                assert!(
                    hello.is_ok(),
                    "TLS detected in bytes that are not a ClientHello"
                );
            }
        }
    }
});
