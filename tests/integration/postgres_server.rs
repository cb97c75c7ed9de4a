//! A throwaway PostgreSQL server for the tests: `initdb` into a temporary
//! directory and `pg_ctl start` on a free port, run as the `postgres` user
//! when the tests run as root (PostgreSQL refuses root). Found in Debian's
//! `/usr/lib/postgresql/<version>/bin` or through `pg_config --bindir`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) struct PgServer {
    /// Holds `data/` (the cluster), the socket and the log.
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PgServer {
    /// Starts a fresh server, or says in one line why it cannot (no
    /// PostgreSQL installed) and gives `None`, so the caller can skip.
    pub(crate) fn start() -> Option<Self> {
        let Some(bin) = bin_dir() else {
            eprintln!(
                "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or \
                 pg_config --bindir): skipping this PostgreSQL test"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if is_root() {
            // The postgres user must reach and own the cluster directory.
            set_mode(dir.path(), 0o755);
            chown_to_postgres(dir.path());
            chown_to_postgres(&data);
        }
        set_mode(&data, 0o700);
        let server = Self {
            dir,
            bin,
            port: free_port(),
        };
        server.run_ok(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        server.start_again();
        Some(server)
    }

    /// The URL wenda's `--store` takes, for database `db`.
    pub(crate) fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub(crate) fn create_database(&self, name: &str) {
        self.run_ok(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ],
        );
    }

    /// Stops the server (fast shutdown: sessions are cut, nothing committed
    /// is lost).
    pub(crate) fn stop(&self) {
        self.run_ok(
            "pg_ctl",
            &["-D", path(&self.data()), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts the stopped server again on the same port.
    pub(crate) fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off \
             -c max_connections=200",
            self.port,
            path(self.dir.path())
        );
        self.run_ok(
            "pg_ctl",
            &[
                "-D",
                path(&self.data()),
                "-l",
                path(&self.dir.path().join("log")),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Runs a PostgreSQL program (`pg_dump`, `pg_restore`, …) against this
    /// server as the `postgres` user; its output.
    pub(crate) fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args).current_dir(self.dir.path());
        cmd.output().unwrap()
    }

    fn run_ok(&self, program: &str, args: &[&str]) {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// A directory the `postgres` user may write files into (dumps).
    pub(crate) fn scratch(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", path(&self.data()), "-m", "immediate", "-w", "stop"],
        );
    }
}

fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    // The newest version installed.
    found.sort_by_key(|b| {
        b.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().or_else(|| {
        let out = Command::new("pg_config").arg("--bindir").output().ok()?;
        let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        dir.join("initdb").exists().then_some(dir)
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn chown_to_postgres(path: &Path) {
    let out = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chown: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
