//! `--watch N`: change subscriptions under load (CONTRACT §5), on one node or a cluster.
//!
//! The registry creates `--watch-citizens` new citizens, every watching client follows all of
//! them, and then PutCitizen updates them (each update moves `current_address`, which every
//! bench client may read) from `--concurrency` writers (or at `--rate` updates a second),
//! twice: alone, then with N WatchChanges streams open (spread over the bench clients and
//! `--connections`), each receiving an event per update. What it reports:
//!
//! - the latency from a PutCitizen's response to each stream's event for it (p50/p99): the
//!   writer notes when each response arrived, each stream when each event did, and the two
//!   are matched after the run, so nothing is shared on the hot path;
//! - the events delivered per second to all streams together, from the first event to the
//!   last, and how many of those expected arrived (each is audited before it is sent);
//! - PutCitizen's throughput with the watchers against without them;
//! - with `--follow-ids M`: one Follow of M ids in batches of 10,000, its time and the store's
//!   growth per followed id.
//!
//! Every process of the run — the gateway, its audit writer, 1,000 streams' client side and
//! the writers — shares the machine's cores, as in every `--dev` scenario.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use popgate::client::connect;
use popgate::pb;
use popgate::pb::identity_gateway_client::IdentityGatewayClient;
use popgate::pb::registry_admin_client::RegistryAdminClient;

use crate::load::{Tally, code_name};
use crate::report::{self, Comparison, CpuFigures, PhaseReport};
use crate::target::{self, BenchDir, GatewaySettings, REGISTRY_CLIENT, Running, StoreRef};
use crate::{BenchError, Options, runtime};

/// What `--watch` was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchOptions {
    /// WatchChanges streams open during the second phase.
    pub streams: usize,
    /// Citizens created for the run, followed by every watching client and updated.
    pub citizens: u64,
    /// Ids one client follows in the Follow measurement (0: none).
    pub follow_ids: u64,
}

/// The field every update changes and every event carries.
const CHANGED: &str = "current_address";

/// What the streams and the Follow measurement gave.
#[derive(Debug, Clone, Serialize)]
pub struct WatchFigures {
    pub streams: usize,
    pub followed_citizens: u64,
    /// Events carrying a citizen received during the phase with watchers (and its drain).
    pub events: u64,
    /// Events expected: updates acknowledged while the streams were open × streams.
    pub events_expected: u64,
    pub events_per_sec: f64,
    /// From the PutCitizen response to the event, ms.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// Streams that ended with an error during the run (none should), and the first error.
    pub streams_ended: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_end: Option<String>,
    /// The targets on one node: p99 <= 100 ms (the contract's bound is 1 s), and
    /// >= 50,000 events/s with the audit on.
    pub latency_target_met: bool,
    pub events_target_met: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow: Option<FollowFigures>,
}

/// One client following many ids.
#[derive(Debug, Clone, Serialize)]
pub struct FollowFigures {
    pub ids: u64,
    pub secs: f64,
    pub ids_per_sec: f64,
    /// The store's growth per followed id (sled: its files; PostgreSQL: the follow tables).
    pub bytes_per_id: Option<f64>,
}

/// The time each acknowledged update's response arrived, by (citizen id, version).
type Acked = Arc<Mutex<HashMap<(String, u64), Instant>>>;

pub(crate) fn run(
    opts: &Options,
    dir: &mut BenchDir,
    store: &StoreRef,
    settings: &GatewaySettings,
    server_threads: Option<usize>,
    client_threads: Option<usize>,
    w: &WatchOptions,
) -> Result<(Vec<PhaseReport>, Vec<Comparison>, WatchFigures), BenchError> {
    let configs = dir.stage_configs(store, settings)?;
    let mut tls = HashMap::new();
    for c in settings
        .clients
        .iter()
        .map(|c| c.id.as_str())
        .chain([REGISTRY_CLIENT])
    {
        tls.insert(c.to_owned(), dir.client_tls(c)?);
    }
    let server_rt = runtime(server_threads, "bench-server")?;
    let client_rt = runtime(client_threads.or(Some(1)), "bench-client")?;
    // Counted before the gateway opens the store (sled lets one opener at a time).
    let first_new = target::store_count(store)?.max(opts.workload.citizens);
    let running = target::start_nodes(configs, server_rt.handle())?;
    let watchers: Vec<String> = settings.clients.iter().map(|c| c.id.clone()).collect();
    let result = client_rt.block_on(async {
        let addrs: Vec<String> = running.addrs.iter().map(|a| a.to_string()).collect();
        let connect_as = |id: &str, i: usize| {
            let (addr, tls) = (addrs[i % addrs.len()].clone(), tls[id].clone());
            async move { connect(&addr, "localhost", &tls).await }
        };
        let mut registry = Vec::new();
        for i in 0..opts.connections {
            registry.push(connect_as(REGISTRY_CLIENT, i).await?);
        }
        let ids: Vec<String> = (first_new..first_new + w.citizens)
            .map(|i| popgate::synth::citizen_id_at(opts.workload.seed, i).to_string())
            .collect();
        create(&registry[0], opts.workload.seed, first_new, w.citizens).await?;
        // Each bench client follows the citizens once; the streams are spread over
        // `--connections` connections (at least one per client).
        let mut watcher_channels = Vec::new();
        for i in 0..opts.connections.max(watchers.len()) {
            let id = &watchers[i % watchers.len()];
            let ch = connect_as(id, i).await?;
            if i < watchers.len() {
                follow(&ch, &ids, &opts.workload.purpose).await?;
            }
            watcher_channels.push((id.clone(), ch));
        }
        let follow_figures = match w.follow_ids {
            0 => None,
            n => Some(measure_follow(store, &watcher_channels[0].1, opts, n).await?),
        };
        let versions: Vec<Arc<AtomicU64>> = (0..w.citizens)
            .map(|_| Arc::new(AtomicU64::new(1)))
            .collect();
        let writers = Writers {
            channels: registry,
            seed: opts.workload.seed,
            first: first_new,
            versions,
            pace: opts.pace,
        };

        // Phase 1: the updates alone.
        let alone = writers
            .phase(&running, opts.warmup, opts.duration, None)
            .await;
        // Phase 2: the same with the streams open, each ready (its first progress event) first.
        let streams = open_streams(&watcher_channels, w.streams, &opts.workload.purpose).await?;
        let acked: Acked = Arc::default();
        let with = writers
            .phase(&running, opts.warmup, opts.duration, Some(acked.clone()))
            .await;
        // The last events are still on their way: wait until every expected one has come, or
        // none has for 5 s (a stream that fell behind is still catching up from the log).
        let expected = acked.lock().await.len() * w.streams;
        streams.drain(expected).await;
        let received = streams.stop().await;
        Ok::<_, BenchError>((alone, with, received, acked, follow_figures))
    });
    client_rt.block_on(running.stop());
    drop(client_rt);
    server_rt.shutdown_timeout(Duration::from_secs(5));
    let (alone, with, (received, ended), acked, follow) = result?;

    let acked = Arc::try_unwrap(acked)
        .map(Mutex::into_inner)
        .unwrap_or_default();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut events = 0u64;
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for (key, at) in &received {
        if let Some(acked_at) = acked.get(key) {
            events += 1;
            let us = at.saturating_duration_since(*acked_at).as_micros() as u64;
            latency.saturating_record(us.clamp(1, 60_000_000));
            first = Some(first.map_or(*at, |f| f.min(*at)));
            last = Some(last.map_or(*at, |l| l.max(*at)));
        }
    }
    // Delivered per second: from the first event to the last, as fast as the streams took them.
    let delivery_secs = first.zip(last).map_or(0.0, |(f, l)| (l - f).as_secs_f64());
    let ms = |q: f64| {
        if latency.is_empty() {
            0.0
        } else {
            latency.value_at_quantile(q) as f64 / 1000.0
        }
    };
    let figures = WatchFigures {
        streams: w.streams,
        followed_citizens: w.citizens,
        events,
        events_expected: acked.len() as u64 * w.streams as u64,
        events_per_sec: events as f64 / delivery_secs.max(1e-3),
        latency_p50_ms: ms(0.50),
        latency_p99_ms: ms(0.99),
        latency_max_ms: latency.max() as f64 / 1000.0,
        streams_ended: ended.0,
        first_end: ended.1,
        latency_target_met: !latency.is_empty() && ms(0.99) <= 100.0,
        events_target_met: events as f64 / delivery_secs.max(1e-3) >= 50_000.0,
        follow,
    };
    let words = format!(
        "PutCitizen of {} followed citizens, {}",
        w.citizens,
        match opts.pace {
            crate::load::Pace::Closed { concurrency } => format!("{concurrency} writers"),
            crate::load::Pace::Open { rate } => format!("{rate:.0} updates/s"),
        }
    );
    let mut a = alone.report("puts-alone", &format!("{words}, no stream open"), opts);
    let mut b = with.report(
        "puts-with-watchers",
        &format!("{words}, {} WatchChanges streams open", w.streams),
        opts,
    );
    a.round = 1;
    b.round = 1;
    let comparisons = vec![
        Comparison::between("PutCitizen with watchers vs without", &b, &a)
            .with_target(">= 0.9x without", |c| c.throughput_ratio >= 0.9),
    ];
    Ok((vec![a, b], comparisons, figures))
}

/// Creates `count` new citizens from index `first` of population `seed`.
async fn create(registry: &Channel, seed: u64, first: u64, count: u64) -> Result<(), BenchError> {
    let mut tasks = Vec::new();
    for i in first..first + count {
        let mut c = RegistryAdminClient::new(registry.clone());
        tasks.push(tokio::spawn(async move {
            c.put_citizen(pb::PutCitizenRequest {
                citizen: Some(record(seed, i, 0)),
                expected_version: 0,
            })
            .await
        }));
        if tasks.len() >= 64 {
            for t in tasks.drain(..) {
                join_put(t).await?;
            }
        }
    }
    for t in tasks {
        join_put(t).await?;
    }
    Ok(())
}

async fn join_put(
    t: tokio::task::JoinHandle<Result<tonic::Response<pb::PutCitizenResponse>, tonic::Status>>,
) -> Result<(), BenchError> {
    t.await
        .map_err(|e| BenchError::Setup(format!("a create task failed: {e}")))?
        .map_err(|e| BenchError::Setup(format!("creating the watched citizens: {e}")))?;
    Ok(())
}

/// Record `index` of the population as update `n` leaves it (a new current address).
fn record(seed: u64, index: u64, n: u64) -> pb::Citizen {
    let mut c = popgate::synth::citizen_at(seed, index);
    if n > 0 {
        c.current_address = format!("Số {n}, {}", c.current_address);
    }
    popgate::grpc::convert::citizen(&c, crate::load::all_fields())
}

async fn follow(ch: &Channel, ids: &[String], purpose: &str) -> Result<u64, BenchError> {
    let mut client = IdentityGatewayClient::new(ch.clone());
    let mut following = 0;
    for batch in ids.chunks(10_000) {
        let r = client
            .follow(pb::FollowRequest {
                citizen_ids: batch.to_vec(),
                purpose: purpose.to_owned(),
                request_id: String::new(),
            })
            .await
            .map_err(|e| BenchError::Setup(format!("Follow: {e}")))?
            .into_inner();
        following = r.following;
    }
    Ok(following)
}

/// Follows ids `0..n` of the seeded population (at most the store's) as one client, and what
/// that cost the store.
async fn measure_follow(
    store: &StoreRef,
    ch: &Channel,
    opts: &Options,
    n: u64,
) -> Result<FollowFigures, BenchError> {
    let n = n.min(opts.workload.citizens);
    let ids: Vec<String> = (0..n)
        .map(|i| popgate::synth::citizen_id_at(opts.workload.seed, i).to_string())
        .collect();
    let before = store_bytes(store).await;
    let started = Instant::now();
    follow(ch, &ids, &opts.workload.purpose).await?;
    let secs = started.elapsed().as_secs_f64();
    let after = store_bytes(store).await;
    Ok(FollowFigures {
        ids: n,
        secs,
        ids_per_sec: n as f64 / secs.max(1e-9),
        bytes_per_id: before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / n.max(1) as f64),
    })
}

/// The store's size on disk: sled's files (once its background flush, every 500 ms, has
/// written what came before), or PostgreSQL's follow tables.
async fn store_bytes(store: &StoreRef) -> Option<u64> {
    match store {
        StoreRef::Sled(path) => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some(dir_bytes(path))
        }
        StoreRef::Postgres(url) => {
            let out = std::process::Command::new("psql")
                .arg(url)
                .args([
                    "-Atc",
                    "SELECT pg_total_relation_size('follows') + pg_total_relation_size('follow_counts')",
                ])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        }
    }
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The registry's writers: worker `k` updates the citizens `i` with `i % workers == k`, one at
/// a time, each with the version its last update produced, so no two race. Closed loop
/// (`--concurrency` workers), or `--rate` updates a second in total on a timetable.
struct Writers {
    channels: Vec<Channel>,
    seed: u64,
    first: u64,
    versions: Vec<Arc<AtomicU64>>,
    pace: crate::load::Pace,
}

/// What one phase of updates counted.
struct Phase {
    tally: Tally,
    secs: f64,
    cpu: Option<CpuFigures>,
    audit: Option<report::AuditFigures>,
}

impl Phase {
    fn report(&self, name: &str, settings: &str, _opts: &Options) -> PhaseReport {
        let mut p = PhaseReport::new(name, "gateway", settings.to_owned(), self.secs, &self.tally);
        p.cpu = self.cpu.clone();
        p.audit = self.audit.clone();
        p
    }
}

impl Writers {
    async fn phase(
        &self,
        running: &Running,
        warmup: Duration,
        duration: Duration,
        acked: Option<Acked>,
    ) -> Phase {
        let start = Instant::now();
        let (from, until) = (start + warmup, start + warmup + duration);
        let audit_before = running.audit_stats();
        let cpu_before = report::CpuSample::now();
        let (workers, interval) = match self.pace {
            crate::load::Pace::Closed { concurrency } => (concurrency, None),
            // Enough workers that one slow answer does not hold up the timetable.
            crate::load::Pace::Open { rate } => (16, Some(16.0 / rate.max(1e-3))),
        };
        let workers = workers.clamp(1, self.versions.len());
        let mut tasks = Vec::new();
        for k in 0..workers {
            let ch = self.channels[k % self.channels.len()].clone();
            let mine: Vec<(u64, Arc<AtomicU64>)> = (k..self.versions.len())
                .step_by(workers)
                .map(|i| (self.first + i as u64, self.versions[i].clone()))
                .collect();
            let (seed, acked) = (self.seed, acked.clone());
            tasks.push(tokio::spawn(async move {
                let mut client = RegistryAdminClient::new(ch);
                let mut tally = Tally::new();
                let mut turn = 0usize;
                loop {
                    if let Some(every) = interval {
                        let slot = start
                            + Duration::from_secs_f64(every * (turn as f64 + k as f64 / 16.0));
                        tokio::time::sleep_until(slot.into()).await;
                    }
                    let sent = Instant::now();
                    if sent >= until {
                        return tally;
                    }
                    let (index, version) = &mine[turn % mine.len()];
                    turn += 1;
                    let v = version.load(Ordering::Relaxed);
                    let r = client
                        .put_citizen(pb::PutCitizenRequest {
                            citizen: Some(record(seed, *index, v)),
                            expected_version: v,
                        })
                        .await;
                    let counts = sent >= from;
                    match r {
                        Ok(resp) => {
                            let at = Instant::now();
                            let new = resp.into_inner().version;
                            version.store(new, Ordering::Relaxed);
                            if counts {
                                tally.ok += 1;
                                tally.latency.saturating_record(
                                    (at - sent).as_micros().clamp(1, 60_000_000) as u64,
                                );
                            }
                            // Warm-up updates too: their events are matched like the others.
                            if let Some(acked) = &acked {
                                let id = popgate::synth::citizen_id_at(seed, *index);
                                acked.lock().await.insert((id.to_string(), new), at);
                            }
                        }
                        Err(e) if counts => {
                            *tally.errors.entry(code_name(e.code())).or_default() += 1;
                        }
                        Err(_) => {}
                    }
                }
            }));
        }
        let mut tally = Tally::new();
        for t in tasks {
            if let Ok(t) = t.await {
                tally.merge(&t);
            }
        }
        let wall = start.elapsed();
        let cpu = CpuFigures::between(
            &cpu_before,
            &report::CpuSample::now(),
            wall,
            tally.ok.max(1),
        );
        let audit = running
            .audit_stats()
            .zip(audit_before)
            .map(|(after, before)| {
                report::AuditFigures::between(
                    &before,
                    &after,
                    wall.as_secs_f64(),
                    report::WHOLE_STEP,
                )
            });
        Phase {
            tally,
            secs: duration.as_secs_f64(),
            cpu,
            audit,
        }
    }
}

/// What one stream received: (citizen id, version) and when.
type Received = Arc<std::sync::Mutex<Vec<((String, u64), Instant)>>>;

/// Streams that ended with an error before the run stopped them, and the first error.
type Ended = Arc<std::sync::Mutex<(u64, Option<String>)>>;

/// The open streams, each noting what it received.
struct Streams {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    lists: Vec<Received>,
    ended: Ended,
}

impl Streams {
    fn received(&self) -> usize {
        self.lists
            .iter()
            .map(|l| {
                l.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    /// Waits until `expected` events have come in all, or none for 5 s.
    async fn drain(&self, expected: usize) {
        let (mut seen, mut quiet_since) = (self.received(), Instant::now());
        while seen < expected && quiet_since.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.received();
            if now > seen {
                (seen, quiet_since) = (now, Instant::now());
            }
        }
    }

    /// Stops them and returns every event received, and how many had ended on their own.
    async fn stop(self) -> (Vec<((String, u64), Instant)>, (u64, Option<String>)) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        let mut all = Vec::new();
        for l in self.lists {
            all.append(&mut l.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        }
        let ended = std::mem::take(
            &mut *self
                .ended
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        (all, ended)
    }
}

/// Opens `n` WatchChanges streams over the watchers' channels, and returns once each has had
/// its first progress event (it is live from then on).
async fn open_streams(
    channels: &[(String, Channel)],
    n: usize,
    purpose: &str,
) -> Result<Streams, BenchError> {
    let received = Arc::new(tokio::sync::Semaphore::new(0));
    let ended: Ended = Arc::default();
    let (mut tasks, mut lists) = (Vec::new(), Vec::new());
    for i in 0..n {
        let ch = channels[i % channels.len()].1.clone();
        let mut client = IdentityGatewayClient::new(ch);
        let mut stream = client
            .watch_changes(pb::WatchChangesRequest {
                after_seq: 0,
                read_mask: Some(prost_types::FieldMask {
                    paths: vec![CHANGED.to_owned()],
                }),
                purpose: purpose.to_owned(),
                request_id: String::new(),
            })
            .await
            .map_err(|e| BenchError::Setup(format!("WatchChanges: {e}")))?
            .into_inner();
        let (ready, ended) = (received.clone(), ended.clone());
        // Each stream's own list; an event is noted as it arrives.
        let mine: Received = Arc::default();
        lists.push(mine.clone());
        tasks.push(tokio::spawn(async move {
            let mut first = true;
            loop {
                let e = match stream.message().await {
                    Ok(Some(e)) => e,
                    Ok(None) => break,
                    Err(st) => {
                        let mut e = ended
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        e.0 += 1;
                        e.1.get_or_insert_with(|| st.to_string());
                        break;
                    }
                };
                match e.citizen {
                    None if first => {
                        first = false;
                        ready.add_permits(1);
                    }
                    None => {}
                    Some(c) => mine
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(((c.citizen_id, c.version), Instant::now())),
                }
            }
        }));
    }
    let all = received
        .acquire_many(n as u32)
        .await
        .map_err(|_| BenchError::Setup("a stream closed before its first progress event".into()))?;
    all.forget();
    Ok(Streams {
        tasks,
        lists,
        ended,
    })
}
