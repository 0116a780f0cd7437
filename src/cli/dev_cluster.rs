//! `serve --dev --cluster`: a cluster a newcomer can see. A throwaway PostgreSQL 15 in
//! `DIR/cluster/pg` (Debian's `postgresql-15` server programs; as root it runs as the
//! `postgres` user), 100,000 seeded citizens, and N nodes in this process on 7443, 7444, …
//! (metrics on 9464, 9465, …) sharing the dev certificates of `serve --dev`. Ctrl-C stops the
//! nodes, then the database; later runs reuse both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::config::{ClusterConfig, Config, StoreBackend};
use crate::server::Server;
use crate::store::Loader;
use crate::store::postgres::{DbUrl, PgLoader};
use crate::synth;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const FIRST_PORT: u16 = 7443;
const FIRST_METRICS_PORT: u16 = 9464;
/// The port of the dev database; 55432 keeps clear of a system PostgreSQL.
const PG_PORT: u16 = 55432;

pub fn run(dir: &Path, nodes: usize) -> anyhow::Result<ExitCode> {
    if !(1..=9).contains(&nodes) {
        bail!("--nodes: between 1 and 9");
    }
    let base = Config::load(&super::dev::prepare(dir)?)?;
    let pg = DevPostgres::start(&std::fs::canonicalize(dir)?.join("cluster/pg"), PG_PORT)?;
    let url_text = pg.url();
    let url = DbUrl::parse(&url_text).map_err(|e| anyhow::anyhow!(e))?;
    let loader = PgLoader::open(&url, true).context("the dev database")?;
    if loader.count()? == 0 {
        tracing::info!(count = super::dev::DEV_CITIZENS, "seeding the dev database");
        let plan = synth::SeedPlan::new(super::dev::DEV_CITIZENS, super::dev::DEV_SEED);
        synth::seed_store(&loader, &plan, |_| {})?;
    }
    drop(loader);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut served = Vec::new();
        for i in 0..nodes {
            let mut config = base.clone();
            let node_id = format!("gw-{}", i + 1);
            config.store.backend = StoreBackend::Postgres;
            config.store.path = None;
            config.store.url = Some(url_text.clone());
            config.cluster = Some(ClusterConfig {
                node_id: node_id.clone(),
                lease_ms: 2000,
            });
            config.server.listen = SocketAddr::from(([127, 0, 0, 1], FIRST_PORT + i as u16));
            config.server.metrics_listen = Some(SocketAddr::from((
                [127, 0, 0, 1],
                FIRST_METRICS_PORT + i as u16,
            )));
            config.audit.dir = dir.join(format!("cluster/{node_id}/audit"));
            config.validate()?;
            let listen = config.server.listen;
            let metrics = config.server.metrics_listen;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("{node_id}: cannot listen on {listen}"))?;
            let mut server = Server::build(config).await?;
            if let Some(m) = metrics {
                let l = tokio::net::TcpListener::bind(m)
                    .await
                    .with_context(|| format!("{node_id}: cannot listen on {m}"))?;
                server = server.with_metrics_listener(l);
            }
            let mut stop = stop_rx.clone();
            served.push(tokio::spawn(async move {
                server
                    .serve(listener, async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await
            }));
            tracing::info!(node = %node_id, listen = %listen, "dev cluster node serving");
        }
        print_next_steps(dir, nodes);
        super::serve::shutdown_signal().await;
        let _ = stop_tx.send(true);
        for s in served {
            s.await.context("a node's task failed")??;
        }
        anyhow::Ok(())
    });
    // The nodes' background tasks end with their runtime, before the database they watch.
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(pg);
    result?;
    Ok(ExitCode::SUCCESS)
}

fn print_next_steps(dir: &Path, nodes: usize) {
    let d = dir.display();
    let someone = synth::citizen_at(super::dev::DEV_SEED, 0);
    let mut out = format!(
        "\npopgate dev cluster: {nodes} nodes over PostgreSQL at 127.0.0.1:{PG_PORT} (database popgate)\n"
    );
    for i in 0..nodes {
        let port = FIRST_PORT + i as u16;
        out.push_str(&format!(
            "  gw-{}: 127.0.0.1:{port}  popgate lookup --dev --dir {d} --as moh --addr 127.0.0.1:{port} {}\n",
            i + 1,
            someone.id
        ));
    }
    out.push_str(&format!(
        "Any node answers any call, and a write on one is what every node answers next\n\
         (GetStats says which node answered). The database: psql -h 127.0.0.1 -p {PG_PORT} -U postgres popgate\n"
    ));
    println!("{out}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs one of PostgreSQL's programs, as the `postgres` user when we are root.
fn pg_command(program: &str) -> Command {
    let path = PathBuf::from(PG_BIN).join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn check(what: &str, out: std::io::Result<std::process::Output>) -> anyhow::Result<()> {
    let out = out.with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A throwaway PostgreSQL 15 with a database `popgate`, in `root` on 127.0.0.1:`port`, stopped
/// when dropped. The dev cluster's database, and the benchmark's (`popgate-bench --store
/// postgres`) when it is given none.
pub struct DevPostgres {
    data: PathBuf,
    port: u16,
}

impl DevPostgres {
    /// Starts it, creating it on first use; a later start reuses what `root` holds.
    pub fn start(root: &Path, port: u16) -> anyhow::Result<DevPostgres> {
        if !Path::new(PG_BIN).join("initdb").is_file() {
            bail!("the dev cluster needs PostgreSQL 15's server: apt-get install postgresql-15");
        }
        let data = root.join("data");
        std::fs::create_dir_all(root)?;
        if is_root() {
            check(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(root)
                    .output(),
            )?;
        }
        if !data.join("PG_VERSION").is_file() {
            check(
                "initdb",
                pg_command("initdb")
                    .arg("-D")
                    .arg(&data)
                    .args(["--auth=trust", "-U", "postgres", "-E", "UTF8"])
                    .output(),
            )
            .context("the postgres user must be able to reach --dir")?;
        }
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            root.display()
        );
        check(
            "pg_ctl start",
            pg_command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "-l"])
                .arg(root.join("log"))
                .args(["-w", "start"])
                .output(),
        )?;
        let pg = DevPostgres { data, port };
        // The database, made once.
        let exists = pg_command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-Atc",
                "SELECT 1 FROM pg_database WHERE datname = 'popgate'",
            ])
            .output()
            .context("cannot run psql")?;
        if String::from_utf8_lossy(&exists.stdout).trim() != "1" {
            check(
                "createdb",
                pg_command("psql")
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port.to_string(),
                        "-U",
                        "postgres",
                        "-c",
                        "CREATE DATABASE popgate",
                    ])
                    .output(),
            )?;
        }
        tracing::info!(port, "dev database running");
        Ok(pg)
    }

    /// The server's process id (its postmaster), from `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// The URL of its database `popgate`.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/popgate", self.port)
    }
}

impl Drop for DevPostgres {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .output();
    }
}
