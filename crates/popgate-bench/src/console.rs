//! `--console N`: the audit console over a log of N records (CONTRACT §7; issue 24's figures).
//!
//! Before the gateway starts, its audit log is filled with N synthetic records spread over
//! `--console-days` days ([`crate::auditlog`]): in its folder for the file backend (generated
//! once per size into the bench directory and linked into each run's folder), or in the
//! database's `audit_log` for `--audit-backend postgres`. Then, with the gateway serving its
//! console:
//!
//! - **search**: an inspector asks each kind of search `--console-searches` times, one after
//!   another, each on a new TLS connection (handshake included, as a browser opening the
//!   page), and the time to the whole first page is recorded: p50/p99 per kind;
//! - **the console's effect on the gateway**: the usual closed-loop load runs alone and while
//!   an inspector pages through the records of a client of the load (pages 1 to 20, again
//!   and again) without pause, alternating
//!   (`--rounds`, at least 2, times alone then paging); the ratio of the two throughputs in
//!   each round is the figure, and how long the inspector waited for each page meanwhile.
//!
//! Everything shares the machine's cores: the gateway, its audit writer, the console's scans,
//! the load generator and, with the database log, PostgreSQL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use popgate::client::{ClientTls, connect};

use crate::auditlog::{self, LogSpec};
use crate::load::LoadSpec;
use crate::report::{Comparison, PhaseReport};
use crate::target::{self, BenchDir, CONSOLE_CLIENT, GatewaySettings, StoreKind, StoreRef};
use crate::{BenchError, Options, runtime};

/// What `--console` was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleOptions {
    /// Records in the log before the gateway starts.
    pub records: u64,
    /// Days the records' timestamps span, the last one now.
    pub days: u64,
    /// Times each kind of search is asked.
    pub searches: usize,
}

/// One kind of search and how long its first page took.
#[derive(Debug, Clone, Serialize)]
pub struct SearchFigure {
    pub name: String,
    /// The path asked for the first time (each time asks about another citizen or day where
    /// the kind has one).
    pub example: String,
    pub asked: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Bytes of the first answer.
    pub page_bytes: usize,
}

/// What the console run gave.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleFigures {
    pub backend: String,
    pub records: u64,
    pub days: u64,
    /// The records' bytes as the log holds them.
    pub log_bytes: u64,
    /// Seconds to write the synthetic log (0 when an earlier run's was reused).
    pub log_write_secs: f64,
    pub searches: Vec<SearchFigure>,
    /// Pages the inspector was served while the load ran beside it, and how long each took
    /// (p50/p99, ms): what an inspector waits at the gateway's busiest.
    pub pages_during_load: u64,
    pub page_during_load_p50_ms: f64,
    pub page_during_load_p99_ms: f64,
    /// Pages asked for meanwhile that did not come (their status or error), the first of them.
    pub pages_failed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
}

/// The name of a kind of search and its path for the `i`th asking.
type SearchKind = (&'static str, Box<dyn Fn(u64) -> String>);

/// A citizen the log holds, a different one for each `i`: the one of a record spread over
/// the log (or the next record that names one).
fn citizen_in(spec: &LogSpec, i: u64) -> String {
    let n = spec.records.max(1);
    let mut j = (i.wrapping_mul(7_919_993) + 1) % n;
    for _ in 0..n {
        if let Some(id) = auditlog::event(spec, j).citizen_id {
            return id;
        }
        j = (j + 1) % n;
    }
    popgate::synth::citizen_id_at(spec.seed, 0).to_string()
}

fn kinds(spec: &LogSpec) -> Vec<SearchKind> {
    let day = |d: u64| {
        let t = time::OffsetDateTime::now_utc() - time::Duration::days(d as i64);
        format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
    };
    let days = spec.days.max(2);
    let (s1, s2) = (spec.clone(), spec.clone());
    vec![
        ("newest", Box::new(|_| "/?page=1".to_owned())),
        ("client", Box::new(|_| "/?client=viettel".to_owned())),
        ("outcome", Box::new(|_| "/?outcome=denied".to_owned())),
        (
            "client+method+day",
            Box::new(move |i| {
                let d = 1 + i % (days - 1);
                format!(
                    "/?client=mobifone&method=Verify&since={}&until={}",
                    day(d + 1),
                    day(d)
                )
            }),
        ),
        (
            "citizen",
            Box::new(move |i| format!("/?citizen={}", citizen_in(&s1, i))),
        ),
        (
            "client page 10",
            Box::new(|_| "/?client=evn&page=10".to_owned()),
        ),
        (
            "citizen report",
            Box::new(move |i| format!("/citizens/{}", citizen_in(&s2, i + 1_000))),
        ),
    ]
}

pub(crate) fn run(
    opts: &Options,
    dir: &mut BenchDir,
    store: &StoreRef,
    settings: &GatewaySettings,
    server_threads: Option<usize>,
    client_threads: Option<usize>,
    c: &ConsoleOptions,
) -> Result<(Vec<PhaseReport>, Vec<Comparison>, ConsoleFigures), BenchError> {
    let setup = |e: anyhow::Error| BenchError::Setup(format!("{e:#}"));
    let settings = GatewaySettings {
        console: true,
        ..settings.clone()
    };
    let configs = dir.stage_configs(store, &settings)?;
    let config = configs
        .first()
        .ok_or_else(|| BenchError::Setup("no gateway".into()))?;
    let spec = LogSpec {
        records: c.records,
        days: c.days,
        citizens: opts.workload.citizens,
        seed: opts.workload.seed,
    };
    let started = Instant::now();
    let (backend, log_bytes, wrote) = match &settings.store {
        StoreKind::Postgres {
            url,
            audit_in_db: true,
        } => {
            let node = config
                .cluster
                .as_ref()
                .map(|c| c.node_id.clone())
                .unwrap_or_default();
            let rt = runtime(Some(2), "bench-log")?;
            let (bytes, wrote) = rt
                .block_on(auditlog::write_db(&spec, url, &node))
                .map_err(setup)?;
            ("postgres", bytes, wrote)
        }
        _ => {
            let (bytes, wrote) =
                link_files(&spec, &dir.root().join("console-logs"), &config.audit.dir)
                    .map_err(setup)?;
            ("file", bytes, wrote)
        }
    };
    let log_write_secs = if wrote {
        started.elapsed().as_secs_f64()
    } else {
        0.0
    };

    let mut tls = std::collections::HashMap::new();
    for id in settings.clients.iter().map(|c| c.id.as_str()) {
        tls.insert(id.to_owned(), dir.client_tls(id)?);
    }
    let inspector = dir.client_tls(CONSOLE_CLIENT)?;
    let server_rt = runtime(server_threads, "bench-server")?;
    let client_rt = runtime(client_threads.or(Some(1)), "bench-client")?;
    let running = target::start_nodes(configs, server_rt.handle())?;
    let console = *running
        .console_addrs
        .first()
        .ok_or_else(|| BenchError::Setup("the gateway serves no console".into()))?;
    let result = client_rt.block_on(async {
        // Search: each kind asked `searches` times in turn.
        let mut searches = Vec::new();
        for (name, path) in kinds(&spec) {
            let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            let mut page_bytes = 0;
            for i in 0..c.searches as u64 {
                let p = path(i);
                let t = Instant::now();
                let (status, body) = get(&inspector, console, &p).await?;
                let us = t.elapsed().as_micros().max(1) as u64;
                if status != 200 {
                    return Err(BenchError::Setup(format!(
                        "console answered {status} to {p}: {}",
                        body.chars().take(300).collect::<String>()
                    )));
                }
                if i == 0 {
                    page_bytes = body.len();
                }
                h.saturating_record(us);
            }
            let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            searches.push(SearchFigure {
                name: name.to_owned(),
                example: path(0),
                asked: c.searches,
                p50_ms: ms(0.5),
                p99_ms: ms(0.99),
                max_ms: h.max() as f64 / 1000.0,
                page_bytes,
            });
        }

        // The console's effect: alone, paging, alone, paging.
        let mut channels = Vec::new();
        for i in 0..opts.connections {
            let id = &settings.clients[i % settings.clients.len()].id;
            let addr = running.addrs[i % running.addrs.len()].to_string();
            channels.push(connect(&addr, "localhost", &tls[id]).await?);
        }
        let mut phases = Vec::new();
        let pages = Arc::new(AtomicU64::new(0));
        let failed_total = Arc::new(AtomicU64::new(0));
        let failure_seen = Arc::new(std::sync::Mutex::new(None::<String>));
        let page_times = Arc::new(std::sync::Mutex::new(
            Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
                .map_err(|e| BenchError::Setup(e.to_string()))?,
        ));
        for round in 0..opts.rounds.max(2) as u64 {
            for paging in [false, true] {
                let spec = LoadSpec {
                    pace: opts.pace,
                    workload: opts.workload.clone(),
                    warmup: opts.warmup,
                    duration: opts.duration,
                    stream: round * 2 + paging as u64,
                };
                let stop = Arc::new(AtomicBool::new(false));
                // The inspector on a thread of its own, as on a machine of its own: it must
                // not wait for the load generator's thread.
                let (failed, first_failure) = (failed_total.clone(), failure_seen.clone());
                // A client of the load: its newest records are the ones being written.
                let active = settings.clients[0].id.clone();
                let pager = paging.then(|| {
                    let (stop, pages, inspector, times) = (
                        stop.clone(),
                        pages.clone(),
                        inspector.clone(),
                        page_times.clone(),
                    );
                    std::thread::spawn(move || {
                        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        else {
                            return;
                        };
                        rt.block_on(async {
                            let mut page = 1;
                            while !stop.load(Ordering::Relaxed) {
                                let p = format!("/?client={active}&page={page}");
                                page = page % 20 + 1;
                                let t = Instant::now();
                                let why = match get(&inspector, console, &p).await {
                                    Ok((200, _)) => {
                                        pages.fetch_add(1, Ordering::Relaxed);
                                        if let Ok(mut h) = times.lock() {
                                            h.saturating_record(
                                                t.elapsed().as_micros().max(1) as u64
                                            );
                                        }
                                        continue;
                                    }
                                    Ok((status, body)) => format!(
                                        "{status}: {}",
                                        body.chars().take(200).collect::<String>()
                                    ),
                                    Err(e) => e.to_string(),
                                };
                                failed.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut f) = first_failure.lock() {
                                    f.get_or_insert(why);
                                }
                            }
                        })
                    })
                });
                let name = if paging { "with-inspector" } else { "alone" };
                let (tally, secs, _) = crate::measure(&channels, &spec, name, opts.progress).await;
                stop.store(true, Ordering::Relaxed);
                if let Some(p) = pager {
                    let _ = p.join();
                }
                let mut report = PhaseReport::new(
                    name,
                    "gateway",
                    format!("console over a {backend} log of {} records", c.records),
                    secs,
                    &tally,
                );
                report.round = round as usize + 1;
                phases.push(report);
            }
        }
        let times = page_times
            .lock()
            .map(|h| {
                (
                    h.value_at_quantile(0.5) as f64 / 1000.0,
                    h.value_at_quantile(0.99) as f64 / 1000.0,
                )
            })
            .unwrap_or_default();
        let failures = (
            failed_total.load(Ordering::Relaxed),
            failure_seen.lock().ok().and_then(|f| f.clone()),
        );
        Ok::<_, BenchError>((
            searches,
            phases,
            pages.load(Ordering::Relaxed),
            times,
            failures,
        ))
    });
    server_rt.block_on(running.stop());
    let (searches, phases, pages, (page_p50, page_p99), (pages_failed, first_failure)) = result?;
    let alone: Vec<_> = phases.iter().filter(|p| p.name == "alone").collect();
    let paging: Vec<_> = phases.iter().filter(|p| p.name != "alone").collect();
    let comparisons = alone
        .iter()
        .zip(&paging)
        .map(|(a, p)| {
            let mut cmp =
                Comparison::between("the gateway while an inspector pages vs alone", p, a)
                    .with_target("within the noise (>= 0.95x)", |c| {
                        c.throughput_ratio >= 0.95
                    });
            cmp.round = Some(a.round);
            cmp
        })
        .collect();
    Ok((
        phases,
        comparisons,
        ConsoleFigures {
            backend: backend.to_owned(),
            records: c.records,
            days: c.days,
            log_bytes,
            log_write_secs,
            searches,
            pages_during_load: pages,
            page_during_load_p50_ms: page_p50,
            page_during_load_p99_ms: page_p99,
            pages_failed,
            first_failure,
        },
    ))
}

/// Puts the synthetic log of `spec` into `audit_dir` (empty), from a copy kept under `cache`
/// (written on first use): every file hard-linked but the last, which the gateway will
/// append to and so is copied. Returns the log's bytes and whether it had to be written.
fn link_files(spec: &LogSpec, cache: &Path, audit_dir: &Path) -> anyhow::Result<(u64, bool)> {
    let kept: PathBuf = cache.join(format!(
        "log-{}-days{}-seed{}-of{}",
        spec.records, spec.days, spec.seed, spec.citizens
    ));
    let done = kept.join(".complete");
    let mut wrote = false;
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&kept);
        auditlog::write_files(spec, &kept, 64 * 1024 * 1024)?;
        std::fs::write(&done, b"")?;
        wrote = true;
    }
    let files = popgate::audit::scan::list_files(&kept)?;
    std::fs::create_dir_all(audit_dir)?;
    let mut bytes = 0;
    for (i, f) in files.iter().enumerate() {
        let to = audit_dir.join(f.name());
        bytes += std::fs::metadata(&f.path)?.len();
        if i + 1 == files.len() {
            std::fs::copy(&f.path, &to)?;
        } else {
            std::fs::hard_link(&f.path, &to)?;
        }
    }
    Ok((bytes, wrote))
}

/// One GET on a new TLS connection as `who`: the status and the body.
async fn get(
    who: &ClientTls,
    addr: std::net::SocketAddr,
    path: &str,
) -> Result<(u16, String), BenchError> {
    let fail = |e: &dyn std::fmt::Display| BenchError::Setup(format!("console {path}: {e}"));
    let config = client_config(who).map_err(|e| fail(&e))?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| fail(&e))?;
    let name = ServerName::try_from("localhost").map_err(|e| fail(&e))?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| fail(&e))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: localhost:{}\r\nconnection: close\r\n\r\n",
        addr.port()
    );
    tls.write_all(req.as_bytes()).await.map_err(|e| fail(&e))?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await.map_err(|e| fail(&e))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail(&"no HTTP answer"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail(&"no status line"))?;
    Ok((status, body.to_owned()))
}

/// The rustls client configuration of an identity, built once per identity.
fn client_config(who: &ClientTls) -> Result<Arc<rustls::ClientConfig>, String> {
    static CACHE: std::sync::Mutex<Vec<(String, Arc<rustls::ClientConfig>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, c)) = cache.iter().find(|(k, _)| *k == who.cert_pem) {
        return Ok(c.clone());
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut who.ca_pem.as_bytes()) {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut who.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut who.key_pem.as_bytes())
        .map_err(|e| e.to_string())?
        .ok_or("no key")?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = Arc::new(config);
    cache.push((who.cert_pem.clone(), config.clone()));
    Ok(config)
}
