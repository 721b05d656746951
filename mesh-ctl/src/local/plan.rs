//! The plan of `local up`: from `local.yaml` and the sample's mesh config to
//! the exact processes to run, with the flags and environment the contract
//! in docs/architecture.md ("Local mode") gives them. Pure: nothing here
//! touches the system, so the unit tests pin the contract down.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use mesh_api::node::{format_labels, NodeId, ProxyType};
use mesh_api::{Object, WorkloadEntrySpec};
use serde::Deserialize;

/// Start of every run tag (and, in namespaces mode, every name) `local up`
/// makes: `mesh<pid>x<n>`.
pub const TAG: &str = "mesh";

/// The port of each sidecar's outbound HTTP-proxy listener.
pub const HTTP_PROXY_PORT: u16 = 15080;
/// The port of each sidecar's admin server (on the workload address).
pub const SIDECAR_ADMIN_PORT: u16 = 15000;

/// `local.yaml`: what to run for each WorkloadEntry, and the ingress.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalFile {
    /// One entry per workload to run.
    pub workloads: Vec<WorkloadRun>,
    /// The ingress gateway's identity; Istio's default when left out.
    #[serde(default)]
    pub ingress: Option<Ingress>,
    /// Path of the sample's front page through the ingress (what `local
    /// up` prints and waits for), `/` when left out.
    #[serde(default)]
    pub front_page: Option<String>,
}

/// How to run the app of one WorkloadEntry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadRun {
    /// Name of a WorkloadEntry in `mesh/`.
    pub workload_entry: String,
    /// Its namespace, `default` when left out.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Program and arguments: a binary beside meshctl, or a path relative
    /// to the sample directory.
    pub command: Vec<String>,
    /// Extra environment of the app.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// The ingress gateway's pod identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ingress {
    /// Pod name in the node id.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Labels that Gateway selectors match.
    pub labels: BTreeMap<String, String>,
}

impl Default for Ingress {
    fn default() -> Self {
        Ingress {
            name: "istio-ingressgateway".into(),
            namespace: "istio-system".into(),
            labels: BTreeMap::from([("istio".into(), "ingressgateway".into())]),
        }
    }
}

impl LocalFile {
    /// Parses `local.yaml`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let local: LocalFile = serde_yaml::from_str(text).map_err(|e| anyhow!("{e}"))?;
        if let Some(path) = local.front_page.as_deref().filter(|p| !p.starts_with('/')) {
            bail!("frontPage {path:?} must start with /");
        }
        Ok(local)
    }

    /// The front page through the ingress gateway on 127.0.0.1:`port`.
    pub fn ingress_url(&self, port: u16) -> String {
        let path = self.front_page.as_deref().unwrap_or("/");
        format!("http://127.0.0.1:{port}{path}")
    }
}

/// Where things listen, chosen by `local up`'s flags.
#[derive(Debug, Clone)]
pub struct Ports {
    /// Ingress gateway port on 127.0.0.1 (the Gateway's port 80).
    pub ingress: u16,
    /// Ingress gateway admin port on 127.0.0.1.
    pub ingress_admin: u16,
    /// Pilot xDS port on 127.0.0.1.
    pub xds: u16,
    /// Pilot debug port on 127.0.0.1.
    pub debug: u16,
}

/// One process to start.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    /// Name, also of its log file (`logs/NAME.log`).
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment besides PATH and RUST_LOG (the supervisor
    /// passes nothing else of meshctl's, as a pod gets nothing of kubectl's).
    pub env: BTreeMap<String, String>,
}

impl ProcessSpec {
    /// The program and its arguments.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.to_string_lossy().into_owned())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// Everything `local up` starts, in start order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Pilot first, then the ingress gateway, then per workload its sidecar
    /// and its app.
    pub processes: Vec<ProcessSpec>,
    /// Admin address of every proxy, by process name, to wait on `/ready`.
    pub proxy_admins: Vec<(String, SocketAddr)>,
    /// Pilot's xDS address.
    pub xds_address: SocketAddr,
    /// Pilot's debug address.
    pub debug_address: SocketAddr,
    /// The postcard (or any sample's front page) through the ingress.
    pub ingress_url: String,
}

/// Builds the plan for `local` and the sample's `objects`.
pub fn build(
    local: &LocalFile,
    objects: &[Object],
    sample_dir: &Path,
    bin_dir: &Path,
    config_dir: &Path,
    ports: &Ports,
) -> anyhow::Result<Plan> {
    let loopback = Ipv4Addr::LOCALHOST;
    let xds_address = SocketAddr::from((loopback, ports.xds));
    let debug_address = SocketAddr::from((loopback, ports.debug));
    let mut processes = vec![ProcessSpec {
        name: "mesh-pilot".into(),
        program: bin_dir.join("mesh-pilot"),
        args: vec![
            "--config-dir".into(),
            config_dir.display().to_string(),
            "--xds-address".into(),
            xds_address.to_string(),
            "--debug-address".into(),
            debug_address.to_string(),
        ],
        env: BTreeMap::new(),
    }];

    let (ingress, ingress_admin) = ingress_spec(local, bin_dir, xds_address, ports);
    let mut proxy_admins = vec![(ingress.name.clone(), ingress_admin)];
    processes.push(ingress);

    for run in &local.workloads {
        let namespace = run
            .namespace
            .as_deref()
            .unwrap_or(mesh_api::DEFAULT_NAMESPACE);
        let entry = find_workload_entry(objects, namespace, &run.workload_entry)?;
        let name = &run.workload_entry;
        let address: Ipv4Addr = entry.address.parse().map_err(|_| {
            anyhow!(
                "WorkloadEntry {namespace}/{name}: address {:?} is not an IPv4 address \
                 (local mode needs a 127.x address)",
                entry.address
            )
        })?;
        let app_ip =
            app_address(address).with_context(|| format!("WorkloadEntry {namespace}/{name}"))?;
        let port = app_port(objects, namespace, entry)
            .with_context(|| format!("WorkloadEntry {namespace}/{name}"))?;
        let admin = SocketAddr::from((address, SIDECAR_ADMIN_PORT));
        let mut args = vec![
            "--xds-address".into(),
            xds_address.to_string(),
            "--node-id".into(),
            NodeId::new(ProxyType::Sidecar, address.into(), name, namespace).to_string(),
            "--namespace".into(),
            namespace.to_string(),
        ];
        if !entry.labels.is_empty() {
            args.extend(["--labels".into(), format_labels(&entry.labels)]);
        }
        if let Some(sa) = &entry.service_account {
            args.extend(["--service-account".into(), sa.clone()]);
        }
        args.extend([
            "--interception-mode".into(),
            "NONE".into(),
            "--http-proxy-port".into(),
            HTTP_PROXY_PORT.to_string(),
            "--app-ip".into(),
            app_ip.to_string(),
            "--admin-address".into(),
            admin.to_string(),
        ]);
        let sidecar_name = format!("{name}-sidecar");
        processes.push(ProcessSpec {
            name: sidecar_name.clone(),
            program: bin_dir.join("mesh-proxy"),
            args,
            env: BTreeMap::new(),
        });
        proxy_admins.push((sidecar_name, admin));

        let (program, app_args) = run
            .command
            .split_first()
            .ok_or_else(|| anyhow!("local.yaml: workload {name}: command is empty"))?;
        let mut env = run.env.clone();
        env.insert(
            "LISTEN".into(),
            SocketAddr::from((app_ip, port)).to_string(),
        );
        env.insert(
            "HTTP_PROXY".into(),
            format!("http://{address}:{HTTP_PROXY_PORT}"),
        );
        processes.push(ProcessSpec {
            name: name.clone(),
            program: resolve_program(program, sample_dir, bin_dir),
            args: app_args.to_vec(),
            env,
        });
    }

    Ok(Plan {
        processes,
        proxy_admins,
        xds_address,
        debug_address,
        ingress_url: local.ingress_url(ports.ingress),
    })
}

/// The error for a binary that is not where the plan expects it.
pub fn missing_program(name: &str, program: &Path) -> anyhow::Error {
    anyhow!(
        "{name}: program {} not found (build the binaries first: `cargo build --workspace --bins`, \
         or point --bin-dir at them)",
        program.display()
    )
}

/// The ingress gateway on 127.0.0.1 in NONE mode (in both modes: with
/// namespaces it reaches the pods over the bridge), and its admin address.
pub fn ingress_spec(
    local: &LocalFile,
    bin_dir: &Path,
    xds_address: SocketAddr,
    ports: &Ports,
) -> (ProcessSpec, SocketAddr) {
    let loopback = Ipv4Addr::LOCALHOST;
    let ingress = local.ingress.clone().unwrap_or_default();
    let admin = SocketAddr::from((loopback, ports.ingress_admin));
    let spec = ProcessSpec {
        name: ingress.name.clone(),
        program: bin_dir.join("mesh-proxy"),
        args: vec![
            "--xds-address".into(),
            xds_address.to_string(),
            "--node-id".into(),
            NodeId::new(
                ProxyType::Router,
                loopback.into(),
                &ingress.name,
                &ingress.namespace,
            )
            .to_string(),
            "--namespace".into(),
            ingress.namespace.clone(),
            "--labels".into(),
            format_labels(&ingress.labels),
            "--service-account".into(),
            format!("{}-service-account", ingress.name),
            "--interception-mode".into(),
            "NONE".into(),
            "--gateway-ports".into(),
            format!("80={}", ports.ingress),
            "--admin-address".into(),
            admin.to_string(),
        ],
        env: BTreeMap::new(),
    };
    (spec, admin)
}

/// The app's own address: the workload address with its second octet plus
/// one (`127.0.10.2` → `127.1.10.2`), so the sidecar can take the workload
/// address's ports.
pub fn app_address(workload: Ipv4Addr) -> anyhow::Result<Ipv4Addr> {
    let [a, b, c, d] = workload.octets();
    if a != 127 {
        bail!("address {workload} is not a loopback address; local mode needs 127.x addresses");
    }
    let b = b
        .checked_add(1)
        .ok_or_else(|| anyhow!("address {workload}: second octet must be below 255"))?;
    Ok(Ipv4Addr::new(a, b, c, d))
}

/// The port the app listens on: of the first port of the first ServiceEntry
/// selecting the workload, `WorkloadEntry.ports[port.name]`, else
/// `targetPort`, else the port number (the contract's endpoint port).
pub fn app_port(
    objects: &[Object],
    namespace: &str,
    entry: &WorkloadEntrySpec,
) -> anyhow::Result<u16> {
    let Some((_, se)) = selecting_service_entry(objects, namespace, entry) else {
        bail!(
            "no ServiceEntry with ports selects this workload, so there is no port to run its app on"
        )
    };
    let port = se.ports.first().ok_or_else(|| anyhow!("no ports"))?;
    let number = entry
        .ports
        .get(&port.name)
        .copied()
        .or(port.target_port)
        .unwrap_or(port.number);
    u16::try_from(number)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| anyhow!("port {number} is out of range"))
}

/// The first ServiceEntry of `namespace` with ports whose workload selector
/// matches the entry's labels, with its object (for name and namespace).
pub fn selecting_service_entry<'a>(
    objects: &'a [Object],
    namespace: &str,
    entry: &WorkloadEntrySpec,
) -> Option<(&'a Object, &'a mesh_api::ServiceEntrySpec)> {
    objects.iter().find_map(|object| {
        let Object::ServiceEntry(se) = object else {
            return None;
        };
        let selector = se.spec.workload_selector.as_ref()?;
        let selected = object.namespace() == namespace
            && !se.spec.ports.is_empty()
            && selector
                .labels
                .iter()
                .all(|(k, v)| entry.labels.get(k) == Some(v));
        selected.then_some((object, &se.spec))
    })
}

/// The WorkloadEntry `namespace/name` of the sample.
pub fn find_workload_entry<'a>(
    objects: &'a [Object],
    namespace: &str,
    name: &str,
) -> anyhow::Result<&'a WorkloadEntrySpec> {
    objects
        .iter()
        .find_map(|o| match o {
            Object::WorkloadEntry(we) if o.name() == name && o.namespace() == namespace => {
                Some(&we.spec)
            }
            _ => None,
        })
        .ok_or_else(|| {
            anyhow!(
                "local.yaml names WorkloadEntry {namespace}/{name}, which mesh/ does not define"
            )
        })
}

/// A bare name is a binary in `bin_dir`; anything with a `/` is a path,
/// relative to the sample directory.
pub fn resolve_program(program: &str, sample_dir: &Path, bin_dir: &Path) -> PathBuf {
    if program.contains('/') {
        sample_dir.join(program)
    } else {
        bin_dir.join(program)
    }
}

#[cfg(test)]
mod tests;
