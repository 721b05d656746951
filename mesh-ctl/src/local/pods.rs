//! The plan of `local up` in namespaces mode: from `local.yaml` and the
//! sample's mesh config to the pods the one-machine runtime runs (one
//! network namespace each, `mesh-proxy init` capture, the sidecar as UID
//! 1337, the app unmodified), and the sample's config rewritten with the
//! addresses that driver gave them: each WorkloadEntry's `address` becomes
//! its pod's 198.18.N.x, each ServiceEntry that selects a pod gets its
//! service VIP 198.19.N.x as `addresses`. Pure, so the unit tests pin it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{anyhow, Context};
use mesh_api::Object;
use mesh_local::Workload;

use super::plan::{self, LocalFile};
use crate::docs;

/// `(namespace, name)` of a config object.
pub type Key = (String, String);

/// What to deploy, and how the sample's objects map to the driver's names.
#[derive(Debug, Clone)]
pub struct PodPlan {
    /// One pod per `local.yaml` workload, in its order.
    pub workloads: Vec<Workload>,
    /// ServiceEntry `(namespace, name)` → the service name its pods were
    /// deployed under (the short name of its first host), to look up its VIP.
    pub services: BTreeMap<Key, String>,
}

/// Builds the pods for `local` and the sample's `objects`.
pub fn build(
    local: &LocalFile,
    objects: &[Object],
    sample_dir: &Path,
    bin_dir: &Path,
) -> anyhow::Result<PodPlan> {
    let mut workloads = Vec::new();
    let mut services = BTreeMap::new();
    for run in &local.workloads {
        let namespace = run
            .namespace
            .as_deref()
            .unwrap_or(mesh_api::DEFAULT_NAMESPACE);
        let name = &run.workload_entry;
        let context = || format!("WorkloadEntry {namespace}/{name}");
        let entry = plan::find_workload_entry(objects, namespace, name)?;
        let port = plan::app_port(objects, namespace, entry).with_context(context)?;
        let (se_object, se) = plan::selecting_service_entry(objects, namespace, entry)
            .ok_or_else(|| anyhow!("{}: no ServiceEntry selects it", context()))?;
        let service = se
            .hosts
            .first()
            .and_then(|h| h.split('.').next())
            .unwrap_or(se_object.name())
            .to_string();
        services.insert(
            (namespace.to_string(), se_object.name().to_string()),
            service.clone(),
        );
        let (program, args) = run
            .command
            .split_first()
            .ok_or_else(|| anyhow!("local.yaml: workload {name}: command is empty"))?;
        let program = plan::resolve_program(program, sample_dir, bin_dir);
        let mut command = vec![program.to_string_lossy().into_owned()];
        command.extend(args.iter().cloned());
        let first_port = &se.ports[0];
        let protocol = if first_port.protocol.is_empty() {
            "HTTP"
        } else {
            &first_port.protocol
        };
        let mut w = Workload::new(name, &service, &[])
            .namespace(namespace)
            .service_account(entry.service_account.as_deref().unwrap_or("default"))
            .port(&first_port.name, port, protocol);
        w.command = command;
        // The pod carries the WorkloadEntry's labels as they are: they are
        // what subsets and selectors match.
        w.labels = entry.labels.clone();
        w.env = run.env.clone();
        // Every address of the pod: inbound capture hands the connection to
        // the app on the pod's own address.
        w.env.insert("LISTEN".into(), format!("0.0.0.0:{port}"));
        w.validate()
            .map_err(|e| anyhow!("{}: cannot run it as a pod: {e}", context()))?;
        workloads.push(w);
    }
    Ok(PodPlan {
        workloads,
        services,
    })
}

/// The text of one sample config file with the pods' addresses: the
/// WorkloadEntries in `pods` get `spec.address`, the ServiceEntries in
/// `vips` get `spec.addresses: [VIP]`. Other documents keep their text.
pub fn rewrite(
    text: &str,
    pods: &BTreeMap<Key, Ipv4Addr>,
    vips: &BTreeMap<Key, Ipv4Addr>,
) -> anyhow::Result<String> {
    let mut out = docs::split(text);
    for doc in &mut out {
        let Some(id) = doc.id() else { continue };
        let key = (id.namespace.clone(), id.name.clone());
        let (field, value) = match (id.kind.as_str(), pods.get(&key), vips.get(&key)) {
            ("WorkloadEntry", Some(ip), _) => ("address", ip.to_string().into()),
            ("ServiceEntry", _, Some(vip)) => (
                "addresses",
                serde_yaml::Value::Sequence(vec![vip.to_string().into()]),
            ),
            _ => continue,
        };
        let Some(mut value_doc) = doc.value.take() else {
            continue;
        };
        let spec = value_doc
            .get_mut("spec")
            .and_then(|s| s.as_mapping_mut())
            .ok_or_else(|| anyhow!("{} {}/{} has no spec", id.kind, key.0, key.1))?;
        spec.insert(field.into(), value);
        doc.text = serde_yaml::to_string(&value_doc)?;
        doc.value = Some(value_doc);
    }
    Ok(docs::join(&out))
}

#[cfg(test)]
mod tests;
