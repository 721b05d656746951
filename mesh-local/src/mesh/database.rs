//! A real database outside the mesh, from the machine's Debian packages:
//! PostgreSQL (`initdb` then `postgres`, as the unprivileged `postgres`
//! user, which it insists on) in a pod of its own with no sidecar and no
//! Service, on the pod address. Its data directory is in the run
//! directory; it is stopped and removed with everything else.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cmd::{self, Cmd};
use crate::process::append_log;
use crate::registry::Role;
use crate::workload::{Sidecar, Workload};
use crate::LocalError;

use super::LocalMesh;

/// The port PostgreSQL listens on.
pub const POSTGRES_PORT: u16 = 5432;

/// What PostgreSQL needs on this machine, if something is missing.
pub fn postgres_missing() -> Option<String> {
    match (
        postgres_bin("postgres"),
        postgres_bin("initdb"),
        postgres_user(),
    ) {
        (Some(_), Some(_), Some(_)) => None,
        (_, _, None) => Some("a `postgres` user (apt-get install -y postgresql)".into()),
        _ => Some("postgres and initdb (apt-get install -y postgresql)".into()),
    }
}

/// A PostgreSQL program: on PATH, else in Debian's
/// `/usr/lib/postgresql/VERSION/bin` (newest version).
fn postgres_bin(program: &str) -> Option<PathBuf> {
    if let Some(p) = cmd::which(program) {
        return Some(p);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin").join(program)))
        })
        .filter(|(_, p)| p.is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

fn postgres_user() -> Option<(u32, u32)> {
    let user = nix::unistd::User::from_name("postgres").ok()??;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

impl LocalMesh {
    /// Starts PostgreSQL in pod `name` of `namespace`, outside the mesh (no
    /// sidecar, no Service), trusting every local-network client as user
    /// `postgres`, logging each connection (`connection received:
    /// host=PEER`); returns once it accepts connections on
    /// [`POSTGRES_PORT`] of the pod address.
    pub fn deploy_postgres(&mut self, name: &str, namespace: &str) -> Result<(), LocalError> {
        if let Some(why) = postgres_missing() {
            return Err(LocalError::Missing(why));
        }
        let missing = || LocalError::Missing("postgres (apt-get install -y postgresql)".into());
        let postgres = postgres_bin("postgres").ok_or_else(missing)?;
        let initdb = postgres_bin("initdb").ok_or_else(missing)?;
        let (uid, gid) = postgres_user().ok_or_else(missing)?;
        let data = self.run_dir.join("db").join(name);
        make_data_dir(&data, uid, gid)?;
        let init = Cmd::new("setpriv")
            .args([
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
            ])
            .arg(initdb.to_string_lossy())
            .args(["-D", &data.to_string_lossy(), "-U", "postgres"])
            .args(["--auth=trust", "--no-sync", "--no-locale", "-E", "UTF8"])
            .timeout(Duration::from_secs(120));
        let out = init.output()?;
        append_log(
            &self.log_path(name, "init"),
            &format!("{}{}", out.stdout, out.stderr),
        )?;
        if !out.success() {
            return Err(init.failed(&out));
        }
        // Clients come from other pods: trust the pods' network, as the
        // test databases of a CI job do.
        let hba = data.join("pg_hba.conf");
        std::fs::write(&hba, "local all all trust\nhost all all 0.0.0.0/0 trust\n")
            .map_err(LocalError::io(&hba))?;
        let data_s = data.to_string_lossy().into_owned();
        let port = POSTGRES_PORT.to_string();
        let program = postgres.to_string_lossy().into_owned();
        let argv = [
            program.as_str(),
            "-D",
            &data_s,
            "-p",
            &port,
            "-k",
            &data_s,
            "-c",
            "listen_addresses=*",
            "-c",
            "log_connections=on",
            "-c",
            "fsync=off",
        ];
        let db = Workload::new(name, name, &argv)
            .namespace(namespace)
            .without_service()
            .sidecar(Sidecar::None)
            .port("tcp-postgres", POSTGRES_PORT, "TCP")
            .run_as(uid);
        let pod = self.add_pod(&db, Role::App)?;
        self.start_app(&pod)
    }
}

/// The data directory, owned by the database user with mode 0700 (which
/// PostgreSQL requires); its parent stays traversable.
fn make_data_dir(data: &Path, uid: u32, gid: u32) -> Result<(), LocalError> {
    std::fs::create_dir_all(data).map_err(LocalError::io(data))?;
    nix::unistd::chown(
        data,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .map_err(LocalError::sys(format!("chown {}", data.display())))?;
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))
        .map_err(LocalError::io(data))
}
