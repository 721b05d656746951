//! The translator test cases shared by the golden and the Envoy validation
//! tests: a config file under `tests/golden/` and the proxies to generate
//! for.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use mesh_pilot::proxy::{NodeMetadata, Proxy};
use mesh_pilot::source::{snapshot_from_str, ConfigSnapshot};

/// A proxy's node: id, LABELS and the other metadata.
pub struct Node {
    pub id: &'static str,
    pub labels: &'static [(&'static str, &'static str)],
    pub meta: &'static [(&'static str, &'static str)],
}

impl Node {
    /// The proxy model of this node.
    pub fn proxy(&self) -> Proxy {
        let meta = NodeMetadata {
            values: self
                .meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            labels: self
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        };
        Proxy::parse(self.id, &meta).expect("valid node")
    }
}

/// One case: `tests/golden/NAME.yaml` and its proxies.
pub struct Case {
    pub name: &'static str,
    pub nodes: &'static [Node],
}

impl Case {
    /// The directory of inputs and expected outputs.
    pub fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
    }

    /// The case's config.
    pub fn config(&self) -> ConfigSnapshot {
        let input = Self::dir().join(format!("{}.yaml", self.name));
        let text = std::fs::read_to_string(&input).expect("read input");
        snapshot_from_str(&format!("{}.yaml", self.name), &text)
            .unwrap_or_else(|errors| panic!("{}.yaml is invalid: {errors:#?}", self.name))
    }
}

pub const POSTCARD_SIDECAR: Case = Case {
    name: "postcard-sidecar",
    nodes: &[
        Node {
            id: "sidecar~127.0.10.1~greeter-v1.default~default.svc.cluster.local",
            labels: &[("app", "greeter"), ("version", "v1")],
            meta: &[
                ("INTERCEPTION_MODE", "NONE"),
                ("HTTP_PROXY_PORT", "15080"),
                ("MESH_APP_IP", "127.1.10.1"),
                ("SERVICE_ACCOUNT", "postcard-greeter"),
            ],
        },
        Node {
            id: "sidecar~127.0.10.2~messenger-v1.default~default.svc.cluster.local",
            labels: &[("app", "messenger"), ("version", "v1")],
            meta: &[
                ("INTERCEPTION_MODE", "NONE"),
                ("HTTP_PROXY_PORT", "15080"),
                ("MESH_APP_IP", "127.1.10.2"),
            ],
        },
    ],
};

pub const GATEWAY: Case = Case {
    name: "gateway",
    nodes: &[Node {
        id: "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
        labels: &[("istio", "ingressgateway")],
        meta: &[
            ("INTERCEPTION_MODE", "NONE"),
            ("MESH_GATEWAY_PORTS", "80=8080"),
        ],
    }],
};

pub const REDIRECT_SIDECAR: Case = Case {
    name: "redirect-sidecar",
    nodes: &[Node {
        id: "sidecar~127.0.20.1~greeter-v1.default~default.svc.cluster.local",
        labels: &[("app", "greeter"), ("version", "v1")],
        meta: &[("INTERCEPTION_MODE", "REDIRECT")],
    }],
};

/// Every case.
pub const ALL: [&Case; 3] = [&POSTCARD_SIDECAR, &GATEWAY, &REDIRECT_SIDECAR];
