//! The servers a run over PostgreSQL needs beside its gateways, when the user gives none: a
//! throwaway `redis-server` for the shared limits (the database's throwaway is the dev
//! cluster's, [`popgate::cli::dev_cluster::DevPostgres`]), and `pgbench`, PostgreSQL's own
//! load generator, for the ceiling of point reads on the same database in the same run.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchError;
use crate::report::PgbenchFigures;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A free port on 127.0.0.1 (bound and released: a race with another process is possible
/// but harmless here; the server then fails to start and says so).
pub fn free_port() -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BenchError::Setup(format!("no free port: {e}")))
}

/// `redis-server` on a free port, without persistence, killed when dropped.
pub struct ThrowawayRedis {
    child: Child,
    port: u16,
}

impl ThrowawayRedis {
    pub fn start() -> Result<ThrowawayRedis, BenchError> {
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                BenchError::Setup(format!(
                    "cannot start redis-server ({e}): apt-get install redis-server"
                ))
            })?;
        let redis = ThrowawayRedis { child, port };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            if Instant::now() > deadline {
                return Err(BenchError::Setup(format!(
                    "redis-server did not listen on {addr} within 10 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `pgbench -S -M prepared` (point selects by primary key, prepared statements) with 8
/// clients on 2 threads for `duration` against `url`, after `pgbench -i -s 10` (1,000,000
/// rows, about the size of the bench's store) if its tables are not there yet.
pub fn pgbench(url: &str, duration: Duration) -> Result<PgbenchFigures, BenchError> {
    let bin = std::path::Path::new(PG_BIN).join("pgbench");
    let run = |args: &[&str]| -> Result<String, BenchError> {
        let out = Command::new(&bin)
            .args(args)
            .arg(url)
            .output()
            .map_err(|e| {
                BenchError::Setup(format!(
                    "cannot run {} ({e}): apt-get install postgresql-15",
                    bin.display()
                ))
            })?;
        if !out.status.success() {
            return Err(BenchError::Setup(format!(
                "pgbench {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // `-i` without `--no-vacuum` would also vacuum popgate's tables; only its own are made.
    if run(&["-n", "-S", "-t", "1"]).is_err() {
        run(&["-i", "-s", "10", "-q"])?;
    }
    let secs = duration.as_secs().max(1).to_string();
    let args = [
        "-n", "-S", "-M", "prepared", "-c", "8", "-j", "2", "-T", &secs,
    ];
    let out = run(&args)?;
    let number_after = |key: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let tps = number_after("tps = ")
        .ok_or_else(|| BenchError::Setup(format!("pgbench printed no tps: {}", out.trim())))?;
    Ok(PgbenchFigures {
        command: format!("pgbench {} {url}", args.join(" ")),
        tps,
        latency_ms: number_after("latency average = "),
    })
}
