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
    /// `region/zone/subzone`, `""` for none.
    pub locality: &'static str,
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
        let mut proxy = Proxy::parse(self.id, &meta).expect("valid node");
        proxy.locality =
            (!self.locality.is_empty()).then(|| self.locality.parse().expect("locality"));
        proxy
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
            locality: "",
        },
        Node {
            id: "sidecar~127.0.10.2~messenger-v1.default~default.svc.cluster.local",
            labels: &[("app", "messenger"), ("version", "v1")],
            meta: &[
                ("INTERCEPTION_MODE", "NONE"),
                ("HTTP_PROXY_PORT", "15080"),
                ("MESH_APP_IP", "127.1.10.2"),
            ],
            locality: "",
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
        locality: "",
    }],
};

pub const REDIRECT_SIDECAR: Case = Case {
    name: "redirect-sidecar",
    nodes: &[Node {
        id: "sidecar~127.0.20.1~greeter-v1.default~default.svc.cluster.local",
        labels: &[("app", "greeter"), ("version", "v1")],
        meta: &[("INTERCEPTION_MODE", "REDIRECT")],
        locality: "",
    }],
};

pub const TRAFFIC: Case = Case {
    name: "traffic",
    nodes: &[Node {
        id: "sidecar~198.18.0.50~productpage-v1.default~default.svc.cluster.local",
        labels: &[("app", "productpage"), ("version", "v1")],
        meta: &[("INTERCEPTION_MODE", "REDIRECT")],
        locality: "us-east/a",
    }],
};

pub const GATEWAY_SERVERS: Case = Case {
    name: "gateway-servers",
    nodes: &[Node {
        id: "router~198.18.0.70~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
        labels: &[("istio", "ingressgateway")],
        meta: &[(
            "MESH_GATEWAY_PORTS",
            "80=8080,443=8443,8443=9443,9443=10443",
        )],
        locality: "",
    }],
};

pub const EGRESS: Case = Case {
    name: "egress",
    nodes: &[
        Node {
            id: "sidecar~198.18.0.80~client.default~default.svc.cluster.local",
            labels: &[("app", "client")],
            meta: &[("INTERCEPTION_MODE", "REDIRECT")],
            locality: "",
        },
        Node {
            id:
                "router~198.18.0.90~istio-egressgateway.istio-system~istio-system.svc.cluster.local",
            labels: &[("istio", "egressgateway")],
            meta: &[],
            locality: "",
        },
    ],
};

pub const SIDECAR_SCOPE: Case = Case {
    name: "sidecar-scope",
    nodes: &[
        Node {
            id: "sidecar~198.18.1.10~cart-v1.shop~shop.svc.cluster.local",
            labels: &[("app", "cart")],
            meta: &[("INTERCEPTION_MODE", "REDIRECT")],
            locality: "",
        },
        Node {
            id: "sidecar~198.18.1.11~ratings-v1.shop~shop.svc.cluster.local",
            labels: &[("app", "ratings")],
            meta: &[("INTERCEPTION_MODE", "REDIRECT")],
            locality: "",
        },
    ],
};

/// Every case.
pub const ALL: [&Case; 7] = [
    &SIDECAR_SCOPE,
    &EGRESS,
    &POSTCARD_SIDECAR,
    &GATEWAY,
    &REDIRECT_SIDECAR,
    &TRAFFIC,
    &GATEWAY_SERVERS,
];
