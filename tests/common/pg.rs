//! A throwaway PostgreSQL 15 for a test: `initdb` into a temporary directory, `pg_ctl start`
//! on a free loopback port, trust authentication, stopped (immediately) when dropped. As root
//! it runs as the `postgres` user, as PostgreSQL insists. Fault tests stop, kill and restart it.
//!
//! A machine without the server fails the test with the command that installs it: these
//! tests never skip themselves.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const INSTALL: &str = "apt-get install -y postgresql-15";

/// Where Debian puts the server's programs.
fn bin_dir() -> PathBuf {
    let dir = PathBuf::from("/usr/lib/postgresql/15/bin");
    assert!(
        dir.join("initdb").is_file() && dir.join("pg_ctl").is_file(),
        "PostgreSQL 15 is needed for this test and is not installed: {INSTALL}"
    );
    dir
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs one of the server's programs, as `postgres` when we are root.
fn run(program: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

/// A free TCP port on 127.0.0.1 (released before the server binds it: a window, not a race
/// that matters on a test machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct TestPostgres {
    dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
}

impl TestPostgres {
    /// A new cluster with a `popgate` database, running.
    pub fn start() -> TestPostgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("popgate-pg-")
            .tempdir()
            .expect("temp dir");
        give_to_postgres(dir.path());
        let data = dir.path().join("data");
        let out = run(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = TestPostgres {
            dir,
            port: free_port(),
            bin,
        };
        pg.start_server();
        let out = run(
            &pg.bin.join("psql"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE popgate",
            ],
        );
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let out = run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server: `immediate` is a crash (no checkpoint), `fast` a clean stop.
    pub fn stop_server(&self, mode: &str) {
        let out = run(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", mode, "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Turns TLS on with this certificate and key (PEM) and restarts the server.
    pub fn enable_tls(&self, cert_pem: &str, key_pem: &str) {
        let data = self.dir.path().join("data");
        std::fs::write(data.join("server.crt"), cert_pem).unwrap();
        std::fs::write(data.join("server.key"), key_pem).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        if is_root() {
            for f in ["server.crt", "server.key"] {
                let ok = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(data.join(f))
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok);
            }
        }
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).unwrap();
        self.stop_server("fast");
        self.start_server();
    }

    /// The URL of the `popgate` database.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/popgate", self.port)
    }

    /// Runs `sql` with psql and returns what it printed (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> String {
        let out = run(
            &self.bin.join("psql"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "popgate",
                "-At",
                "-c",
                sql,
            ],
        );
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Cuts every database connection of node `node` (its `application_name`s).
    pub fn terminate_node(&self, node: &str) -> usize {
        self.psql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name LIKE 'popgate-{node}%'"
        ))
        .parse()
        .unwrap_or(0)
    }

    /// The server process serving node `node`'s notification connection.
    pub fn listener_pid(&self, node: &str) -> u32 {
        self.psql(&format!(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'popgate-{node}-listen'"
        ))
        .parse()
        .unwrap_or_else(|_| panic!("node {node} has no notification connection"))
    }

    /// Freezes (`STOP`) or thaws (`CONT`) a server process: a connection that hangs, not one
    /// that closes.
    pub fn signal(&self, pid: u32, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {pid}");
    }
}

impl TestPostgres {
    /// A streaming standby of this server, named `name`, in a directory of its own
    /// (`pg_basebackup -R`), running on a port of its own; this server then waits for it at
    /// every commit (`synchronous_standby_names`), so a commit acknowledged here is on the
    /// standby too. Returns once the standby streams synchronously.
    pub fn standby(&self, name: &str) -> TestPostgres {
        let dir = tempfile::Builder::new()
            .prefix("popgate-pg-standby-")
            .tempdir()
            .expect("temp dir");
        give_to_postgres(dir.path());
        let data = dir.path().join("data");
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres application_name={name}",
            self.port
        );
        let out = run(
            &self.bin.join("pg_basebackup"),
            &[
                "-d",
                &conninfo,
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        assert!(
            out.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let standby = TestPostgres {
            dir,
            port: free_port(),
            bin: self.bin.clone(),
        };
        standby.start_server();
        self.psql(&format!(
            "ALTER SYSTEM SET synchronous_standby_names = '{name}'"
        ));
        self.psql("SELECT pg_reload_conf()");
        self.wait_for(
            &format!(
                "SELECT count(*) FROM pg_stat_replication \
                 WHERE application_name = '{name}' AND sync_state = 'sync' AND state = 'streaming'"
            ),
            "1",
        );
        standby
    }

    /// Makes this standby the primary (`pg_ctl promote`, waiting until it accepts writes).
    pub fn promote(&self) {
        let out = run(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-w", "promote"],
        );
        assert!(
            out.status.success(),
            "pg_ctl promote: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_for("SELECT pg_is_in_recovery()", "f");
    }

    /// The process of this standby that receives the primary's WAL.
    pub fn wal_receiver_pid(&self) -> u32 {
        self.psql("SELECT pid FROM pg_stat_wal_receiver")
            .parse()
            .expect("the standby receives no WAL")
    }

    /// Polls `sql` until it prints `want` (the server's own progress, which no clock of the
    /// test's controls), for at most 30 s.
    pub fn wait_for(&self, sql: &str, want: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let got = self.psql(sql);
            if got == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{sql}: still {got}, not {want}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// As root, hands `dir` to the `postgres` user, who alone may run the server.
fn give_to_postgres(dir: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot give the test database's directory to the postgres user"
        );
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = run(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "stop"],
        );
    }
}
