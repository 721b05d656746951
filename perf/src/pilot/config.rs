//! The generated mesh: N services, each a ServiceEntry with two endpoints
//! (labels `version: v1` and `v2`), a DestinationRule with subsets v1/v2
//! and a VirtualService splitting 90/10, one file per service, spread over
//! [`NAMESPACES`] namespaces. Endpoint addresses are in 198.18.0.0/15: the
//! harness sends no traffic to them.

use std::net::Ipv4Addr;
use std::path::Path;

/// Namespaces the services and proxies are spread over.
pub const NAMESPACES: usize = 10;

/// The namespace of service (or proxy) `i`.
pub fn namespace(i: usize) -> String {
    format!("bench-{}", i % NAMESPACES)
}

/// The address of endpoint `n` (0 or 1) of service `i`, moved by `epoch`
/// when the harness changes an endpoint.
pub fn endpoint_address(i: usize, n: usize, epoch: u32) -> Ipv4Addr {
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    let offset = (i as u32 * 2 + n as u32 + epoch * 0x8000) % 0x2_0000;
    Ipv4Addr::from(base + offset)
}

/// What can change in one service's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// Weight of subset v1 (v2 gets the rest of 100).
    pub v1_weight: u32,
    /// Moves the v2 endpoint's address.
    pub endpoint_epoch: u32,
}

impl Default for Variant {
    fn default() -> Self {
        Variant {
            v1_weight: 90,
            endpoint_epoch: 0,
        }
    }
}

/// The YAML of service `i`.
pub fn service_yaml(i: usize, variant: Variant) -> String {
    let ns = namespace(i);
    let host = format!("svc-{i}.{ns}.svc.cluster.local");
    let v1 = endpoint_address(i, 0, 0);
    let v2 = endpoint_address(i, 1, variant.endpoint_epoch);
    let w1 = variant.v1_weight.min(100);
    let w2 = 100 - w1;
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: svc-{i}, namespace: {ns}}}
spec:
  hosts: [{host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 8080, name: http, protocol: HTTP}}]
  endpoints:
  - {{address: {v1}, labels: {{app: svc-{i}, version: v1}}}}
  - {{address: {v2}, labels: {{app: svc-{i}, version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc-{i}, namespace: {ns}}}
spec:
  host: {host}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc-{i}, namespace: {ns}}}
spec:
  hosts: [{host}]
  http:
  - route:
    - {{destination: {{host: {host}, subset: v1}}, weight: {w1}}}
    - {{destination: {{host: {host}, subset: v2}}, weight: {w2}}}
"#
    )
}

/// The file service `i` is written to.
pub fn service_file(dir: &Path, i: usize) -> std::path::PathBuf {
    dir.join(format!("svc-{i}.yaml"))
}

/// Write every service's file into `dir`.
pub fn write_all(dir: &Path, services: usize) -> std::io::Result<u64> {
    let mut bytes = 0;
    for i in 0..services {
        let yaml = service_yaml(i, Variant::default());
        bytes += yaml.len() as u64;
        write_atomically(&service_file(dir, i), &yaml)?;
    }
    Ok(bytes)
}

/// Replace a file in one rename, so pilot never reads half of it.
pub fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_services_are_valid_config() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), 3).unwrap();
        let yaml = service_yaml(
            2,
            Variant {
                v1_weight: 50,
                endpoint_epoch: 1,
            },
        );
        assert!(yaml.contains("weight: 50") && yaml.contains("namespace: bench-2"));
        assert_ne!(endpoint_address(2, 1, 0), endpoint_address(2, 1, 1));
        let a = endpoint_address(70_000, 1, 3);
        assert!(
            a.octets()[0] == 198 && (18..=19).contains(&a.octets()[1]),
            "{a}"
        );
        let snapshot = mesh_pilot::source::snapshot_from_str("svc-2.yaml", &yaml).unwrap();
        assert_eq!(snapshot.virtual_services().count(), 1);
    }
}
