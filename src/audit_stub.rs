//! TEMPORARY stand-in for the audit module being built on branch `audit`; replaced at merge.
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log unavailable: {0}")]
    Unavailable(String),
}
impl AuditError {
    pub fn is_unavailable(&self) -> bool {
        true
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Sync,
    Batch,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied,
    Invalid,
    NotFound,
    RateLimited,
    Error,
}
pub struct AuditOptions {
    pub dir: PathBuf,
    pub durability: Durability,
    pub flush_ms: u64,
    pub roll_bytes: u64,
    pub checkpoint_every: u64,
    pub checkpoint_secs: u64,
    pub signing_key: Option<PathBuf>,
}
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub client: String,
    pub cert_sha256: String,
    pub peer: String,
    pub method: &'static str,
    pub citizen_id: Option<String>,
    pub fields: Vec<&'static str>,
    pub purpose: String,
    pub request_id: String,
    pub outcome: Outcome,
    pub reused: bool,
    pub latency_us: u64,
    pub count: Option<u64>,
    pub reason: Option<String>,
}
#[derive(Clone)]
pub struct AuditLog {
    seq: Arc<AtomicU64>,
    health: tokio::sync::watch::Sender<bool>,
}
impl AuditLog {
    pub fn open(_opts: AuditOptions) -> Result<AuditLog, AuditError> {
        Ok(AuditLog {
            seq: Arc::new(AtomicU64::new(0)),
            health: tokio::sync::watch::Sender::new(true),
        })
    }
    pub async fn append(&self, _ev: AuditEvent) -> Result<u64, AuditError> {
        Ok(self.seq.fetch_add(1, Ordering::Relaxed) + 1)
    }
    pub fn health(&self) -> tokio::sync::watch::Receiver<bool> {
        self.health.subscribe()
    }
    pub async fn shutdown(&self) -> Result<(), AuditError> {
        Ok(())
    }
}
