//! The audit console (CONTRACT §7): HTTPS pages where operators and inspectors search the
//! audit log, read a citizen's access report (also as CSV), see one agency's calls as charts
//! and check the log's integrity — the review that `popgate audit …` gives on the gateway's
//! host, for people who do not work there.
//!
//! One file per concern, outermost first:
//! - `http`: the listener. TLS 1.3 with a client certificate from the `[tls]` CA (no
//!   certificate, no session), HTTP/1.1 through hyper, and the security headers on every
//!   answer. The only file that knows hyper.
//! - `viewer`: the certificate → a configured, unrevoked client of role `operator` or
//!   `inspector`; any other gets a 403 page.
//! - `routes`: path and method → page (404, 405), and the rule that a page that shows what
//!   the log holds is audited before it is answered.
//! - `params`: the query string, each parameter validated as a gRPC field is (400 naming it).
//! - `pages/`: one file per page, each a pure function from what was read to HTML.
//! - `html`, `svg`, `csv`: escaping and the layout; the charts, drawn here; the CSV.
//! - `log`: the audit log through the query layer's [`Source`](crate::audit::query::Source)
//!   (files or the database, whichever the gateway writes) and its verification; no page
//!   knows which backend it reads.
//!
//! It reads the log and writes only its own audit records (method `Console`: a page shown, or
//! a viewer refused), through the gateway's audit sink, so they join the one chain. It shows nothing the log does not hold:
//! no personal data beyond `citizen_id`.

mod csv;
mod html;
mod http;
mod log;
mod pages;
mod params;
mod routes;
mod svg;
mod viewer;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use thiserror::Error;
use tokio::sync::Semaphore;

use crate::audit::checkpoint::PublicKey;
use crate::audit::query::{Log, QueryError};
use crate::audit::{AuditEvent, Outcome};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::identity::Peer;
use crate::policy::truncate;

pub use http::serve;
pub use log::{Integrity, LatestCheckpoint, LogAt, Signature};

/// Why the console cannot start.
#[derive(Debug, Error)]
pub enum ConsoleError {
    #[error("{key}: {reason}")]
    Config { key: String, reason: String },
}

/// Scans of the log run at once, all viewers together: a scan takes the query engine's
/// threads, and the console must not take the gateway's CPU from the agencies it serves.
const SCANS_AT_ONCE: usize = 2;

/// The console's state, shared by every connection.
pub struct Console {
    /// The policy (who may look) and the audit sink (where the console's records go).
    gateway: Arc<Gateway>,
    log: LogAt,
    /// `[console] pubkeys`, oldest first, as `audit verify --pubkey`.
    pubkeys: Vec<PublicKey>,
    /// The last "verify now": what the integrity page shows until the next one.
    last_verified: Mutex<Option<Verified>>,
    scans: Semaphore,
}

/// One run of the integrity check, and who asked for it.
#[derive(Debug, Clone)]
pub struct Verified {
    pub at: String,
    pub by: String,
    pub result: Result<Integrity, String>,
}

impl Console {
    /// The console of the gateway built from `config`, reading the log that gateway writes.
    pub fn new(config: &Config, gateway: Arc<Gateway>) -> Result<Console, ConsoleError> {
        let log = LogAt::from_config(config).map_err(|reason| ConsoleError::Config {
            key: "audit".into(),
            reason,
        })?;
        let files = config.console.as_ref().map(|c| c.pubkeys.as_slice());
        let pubkeys = files
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                PublicKey::from_hex_file(p).map_err(|reason| ConsoleError::Config {
                    key: format!("console.pubkeys[{i}]"),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Console {
            gateway,
            log,
            pubkeys,
            last_verified: Mutex::new(None),
            scans: Semaphore::new(SCANS_AT_ONCE),
        })
    }

    /// Runs `f` over the log on a blocking thread: the query engine is synchronous and
    /// spreads a scan over threads of its own.
    async fn scan<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Log) -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, QueryError> {
        let _turn = self.scans.acquire().await;
        let at = self.log.clone();
        tokio::task::spawn_blocking(move || f(&at.open()?))
            .await
            .unwrap_or_else(|e| {
                Err(QueryError::Db(crate::audit::db_read::DbReadError::Read(
                    format!("the scan stopped: {e}"),
                )))
            })
    }

    /// Runs the same check as `popgate audit verify` (or `--db`) and keeps its result.
    async fn verify(&self, by: &str) -> Verified {
        let _turn = self.scans.acquire().await;
        let (at, keys) = (self.log.clone(), self.pubkeys.clone());
        let result = tokio::task::spawn_blocking(move || at.verify(&keys))
            .await
            .unwrap_or_else(|e| Err(format!("the check stopped: {e}")));
        let v = Verified {
            at: now_text(),
            by: by.to_owned(),
            result,
        };
        if let Ok(mut last) = self.last_verified.lock() {
            *last = Some(v.clone());
        }
        v
    }

    /// The newest checkpoint of each chain, signatures judged by `[console] pubkeys`.
    async fn latest_checkpoints(&self) -> Result<Vec<LatestCheckpoint>, String> {
        let _turn = self.scans.acquire().await;
        let (at, keys) = (self.log.clone(), self.pubkeys.clone());
        tokio::task::spawn_blocking(move || at.latest_checkpoints(&keys))
            .await
            .unwrap_or_else(|e| Err(format!("reading the checkpoints stopped: {e}")))
    }

    fn last_verified(&self) -> Option<Verified> {
        self.last_verified.lock().ok().and_then(|l| l.clone())
    }

    /// Writes the record of a page shown: who looked (certificate and address), at what (the
    /// page and its filter, in `purpose`), about whom (`citizen_id`, when the page is about one
    /// citizen, so that the citizen's own report lists who read it).
    async fn audit(
        &self,
        viewer: &viewer::Viewer,
        target: String,
        citizen: Option<String>,
        started: Instant,
    ) -> Result<u64, crate::audit::AuditError> {
        let ev = AuditEvent {
            client: viewer.id.clone(),
            cert_sha256: viewer.peer.cert_sha256.clone(),
            peer: viewer.peer.addr_text.clone(),
            method: CONSOLE_METHOD,
            citizen_id: citizen,
            fields: Vec::new(),
            purpose: target,
            request_id: String::new(),
            outcome: Outcome::Ok,
            reused: false,
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            count: None,
            reason: None,
        };
        self.gateway.audit_sink().append(ev).await
    }
}

impl Console {
    /// Writes the record of a refused viewer (outcome `denied`, the reason), as a gRPC call
    /// outside its role is audited. Refusals are held to a rate, or anyone with a certificate
    /// from the CA could write records as fast as it can ask: the client's own for a configured
    /// client, one shared by all unknown names; past it, or when the log cannot take it, the
    /// refusal is only logged. The answer is a 403 either way.
    async fn audit_refusal(&self, peer: &Arc<Peer>, target: &str, why: &str, started: Instant) {
        let cn = peer.common_name.as_deref().unwrap_or("");
        let limits = self.gateway.limits();
        let known = self.gateway.policy().clients().any(|c| *c.id == *cn);
        let limit = known
            .then(|| limits.client(cn))
            .flatten()
            .unwrap_or_else(|| limits.unknown());
        if limit.admit().await.is_err() {
            tracing::info!(peer = %peer.addr, "console: refused viewer over its rate, not audited");
            return;
        }
        let ev = AuditEvent {
            client: truncate(cn, MAX_ECHO).into(),
            cert_sha256: peer.cert_sha256.clone(),
            peer: peer.addr_text.clone(),
            method: CONSOLE_METHOD,
            citizen_id: None,
            fields: Vec::new(),
            purpose: truncate(target, MAX_ECHO).to_owned(),
            request_id: String::new(),
            outcome: Outcome::Denied,
            reused: false,
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            count: None,
            reason: Some(why.to_owned()),
        };
        if let Err(e) = self.gateway.audit_sink().append(ev).await {
            tracing::warn!(error = %e, "console: could not audit a refused viewer");
        }
    }
}

/// The longest client id or page a refusal's record repeats (what a refused caller sent is
/// not validated).
const MAX_ECHO: usize = 128;

/// The `method` of the console's audit records.
pub const CONSOLE_METHOD: &str = "Console";

fn now_text() -> String {
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    crate::audit::record::format_ts(us)
}
