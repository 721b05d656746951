//! Kubernetes manifests for a [`Workload`]: ServiceAccount, Service
//! (selector `app`) and a one-replica Deployment, plus the namespace with
//! the injection label. Pure, so the shapes are unit-tested without a cluster.

use serde_json::{json, Value};

use crate::cluster::{Sidecar, Workload};
use mesh_local::registry::to_yaml_stream;

/// Where the shared files appear in every pod (and gateway).
pub const FILES_DIR: &str = "/etc/mesh-e2e/files";
/// The Secret holding them, in each namespace that has pods.
pub const FILES_SECRET: &str = "mesh-e2e-files";

/// The namespace, labelled `istio-injection=enabled` so pods get a sidecar.
pub fn namespace(name: &str) -> String {
    to_yaml_stream(&[json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"istio-injection": "enabled"}},
    })])
}

/// ServiceAccount, Service and Deployment of `w`. A pod without a sidecar is
/// opted out with `sidecar.istio.io/inject: "false"`.
pub fn workload(w: &Workload) -> String {
    let meta = |name: &str| json!({"name": name, "namespace": w.namespace});
    let mut annotations = serde_json::Map::new();
    if w.sidecar == Sidecar::None {
        annotations.insert("sidecar.istio.io/inject".into(), "false".into());
    }
    // `e2e-pod` finds the pod of this Deployment (for its IP).
    let mut pod_labels = w.labels.clone();
    pod_labels.insert("e2e-pod".into(), w.name.clone());
    let env: Vec<Value> = w
        .env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let (command, args) = w
        .command
        .split_first()
        .map_or((vec![], vec![]), |(c, a)| (vec![c.clone()], a.to_vec()));
    let mut docs = vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(&w.service_account)}),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": w.service, "namespace": w.namespace, "labels": {"app": w.service}},
            "spec": {
                "selector": {"app": w.service},
                "ports": w.ports.iter().map(|p| json!({
                    "name": p.name, "port": p.number, "targetPort": p.number,
                    "appProtocol": p.protocol.to_lowercase(),
                })).collect::<Vec<_>>(),
            },
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": w.name, "namespace": w.namespace, "labels": w.labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": w.labels},
                "template": {
                    "metadata": {"labels": pod_labels, "annotations": annotations},
                    "spec": {
                        "serviceAccountName": w.service_account,
                        "volumes": [files_volume()],
                        "containers": [{
                            "name": "app",
                            "image": w.image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": command,
                            "args": args,
                            "env": env,
                            "volumeMounts": [files_mount()],
                            "securityContext": security_context(w),
                            "ports": w.ports.iter().map(|p| json!({
                                "name": p.name, "containerPort": p.number,
                            })).collect::<Vec<_>>(),
                        }],
                    },
                },
            },
        }),
    ];
    if !w.with_service {
        docs.remove(1);
    }
    to_yaml_stream(&docs)
}

/// The shared files' volume: optional, so pods start before any file exists.
pub fn files_volume() -> Value {
    json!({"name": FILES_SECRET, "secret": {"secretName": FILES_SECRET, "optional": true}})
}

/// Where the shared files appear.
pub fn files_mount() -> Value {
    json!({"name": FILES_SECRET, "mountPath": FILES_DIR, "readOnly": true})
}

fn security_context(w: &Workload) -> Value {
    match w.run_as {
        Some(uid) => json!({"runAsUser": uid}),
        None => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_service_and_account_for_a_workload() {
        let w = Workload::new("messenger-v2", "messenger", &["messenger", "--x"])
            .label("version", "v2")
            .port("http", 9080, "HTTP")
            .env("MESSAGE_TEXT", "hi")
            .image("postcard:e2e")
            .sidecar(Sidecar::None);
        let yaml = workload(&w);
        let docs: Vec<serde_yaml::Value> = yaml
            .split("---\n")
            .filter_map(|d| serde_yaml::from_str(d).ok())
            .collect();
        assert_eq!(docs.len(), 3, "{yaml}");
        assert_eq!(docs[1]["spec"]["selector"]["app"], "messenger");
        assert_eq!(docs[1]["spec"]["ports"][0]["port"], 9080);
        let pod = &docs[2]["spec"]["template"];
        assert_eq!(pod["metadata"]["labels"]["version"], "v2");
        assert_eq!(
            pod["metadata"]["annotations"]["sidecar.istio.io/inject"],
            "false"
        );
        let c = &pod["spec"]["containers"][0];
        assert_eq!(
            (&c["image"], &c["command"][0], &c["args"][0]),
            (&"postcard:e2e".into(), &"messenger".into(), &"--x".into())
        );
        assert_eq!(c["env"][0]["name"], "MESSAGE_TEXT");
        assert!(namespace("shop").contains("istio-injection: enabled"));
        assert_eq!(docs[1]["spec"]["ports"][0]["appProtocol"], "http");
        assert_eq!(pod["metadata"]["labels"]["e2e-pod"], "messenger-v2");
        assert!(docs[2]["spec"]["selector"]["matchLabels"]["e2e-pod"].is_null());
    }

    #[test]
    fn a_workload_without_service_has_no_service_object() {
        let w = Workload::new("outsider", "outsider", &["x"]).without_service();
        let yaml = workload(&w);
        assert!(!yaml.contains("kind: Service\n"), "{yaml}");
        assert!(yaml.contains("kind: Deployment"), "{yaml}");
    }
}
