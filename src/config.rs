//! The configuration file (CONTRACT §3): a typed struct, read from TOML with unknown keys
//! refused, then [`Config::validate`]d so that every error names its key and says how to fix
//! it. Relative paths are taken relative to the configuration file's folder, so a deployment
//! directory can be moved as a whole.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::fields::{Field, FieldSet};

/// A configuration that cannot be used. The message names the key.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config key {key}: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub store: StoreConfig,
    /// This node's place in a cluster (with `[store] backend = "postgres"`).
    pub cluster: Option<ClusterConfig>,
    pub audit: AuditConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub changes: ChangesConfig,
    /// The audit console (CONTRACT §7); off when the section is absent.
    pub console: Option<ConsoleConfig>,
    /// Every caller the gateway knows, by certificate CN.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The one TLS port for every gRPC service.
    pub listen: SocketAddr,
    /// Plain-HTTP Prometheus endpoint; keep it on a private interface.
    pub metrics_listen: Option<SocketAddr>,
    /// On SIGTERM/SIGINT, how long calls and streams in flight may take to finish before
    /// their connections are closed.
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
}

fn default_grace() -> u64 {
    30
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM, PKCS#8 or SEC1).
    pub key: PathBuf,
    /// The CA that issues client certificates: only its certificates are accepted.
    pub client_ca: PathBuf,
    /// Revoked client certificates; re-read on reload.
    pub crl: Option<PathBuf>,
}

/// Which population store serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// The embedded store on this machine's disk: one node, no set-up.
    #[default]
    Sled,
    /// PostgreSQL, shared by the nodes of a cluster.
    Postgres,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub backend: StoreBackend,
    /// sled: the directory of the population store.
    pub path: Option<PathBuf>,
    /// sled: its page cache, in MiB of on-disk bytes. Records outside it are read back from the
    /// files (the OS page cache) and decoded again on every read; a store that fits (about
    /// 600 MiB per million citizens) reads at in-memory speed. Default: a quarter of the
    /// memory the process may use, at least 256 ([`crate::store::sled::default_cache_mib`]).
    #[serde(default = "default_store_cache_mib")]
    pub cache_mib: u64,
    /// postgres: a libpq-style URL; several hosts with `target_session_attrs=read-write` find
    /// the primary after a failover; `sslrootcert=FILE` turns on TLS to the database.
    pub url: Option<String>,
}

impl StoreConfig {
    /// The sled directory (valid once the config is validated with backend sled).
    pub fn sled_path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new("."))
    }
}

/// A node of a cluster.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Unique among the nodes, `[a-z0-9-]{1,32}`: names the node in leases and the audit log.
    pub node_id: String,
    /// The longest this node serves from its cache without hearing from the database; also
    /// how long a write may wait for a node that died.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
}

fn default_lease_ms() -> u64 {
    2000
}

fn default_store_cache_mib() -> u64 {
    crate::store::sled::default_cache_mib()
}

/// When an audit record counts as written (`[audit] durability`).
pub use crate::audit::Durability;

/// Where the audit log is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditBackend {
    /// JSON Lines files in `dir` on this node's disk.
    #[default]
    File,
    /// The store's PostgreSQL: a record is committed there before the answer leaves.
    Postgres,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    #[serde(default)]
    pub backend: AuditBackend,
    /// file: the folder of the JSON Lines files (created if missing).
    #[serde(default)]
    pub dir: PathBuf,
    #[serde(default = "default_durability")]
    pub durability: Durability,
    /// In `batch` mode, the longest time between two syncs.
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
    /// A file is rolled once it reaches this size.
    #[serde(default = "default_roll_bytes")]
    pub roll_bytes: u64,
    /// A signed checkpoint of the chain head every this many records…
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// …or every this many seconds, whichever comes first.
    #[serde(default = "default_checkpoint_secs")]
    pub checkpoint_secs: u64,
    /// The Ed25519 key (PKCS#8 PEM) that signs checkpoints; none = unsigned checkpoints.
    pub signing_key: Option<PathBuf>,
}

fn default_durability() -> Durability {
    Durability::Sync
}
fn default_flush_ms() -> u64 {
    5
}
fn default_roll_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_checkpoint_every() -> u64 {
    10_000
}
fn default_checkpoint_secs() -> u64 {
    10
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Records held by the reuse cache; 0 turns it off.
    #[serde(default = "default_cache_capacity")]
    pub capacity: u64,
    /// A cached record (or a cached "not found") is dropped after this many seconds.
    #[serde(default = "default_cache_ttl")]
    pub ttl_secs: u64,
}

fn default_cache_capacity() -> u64 {
    1_000_000
}
fn default_cache_ttl() -> u64 {
    300
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: default_cache_capacity(),
            ttl_secs: default_cache_ttl(),
        }
    }
}

/// The change log that change subscriptions (Follow, WatchChanges) read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesConfig {
    /// Changes are kept at least this long (and dropped within a minute after), so a watcher
    /// may resume from any position this recent; an older one must resync with Lookup.
    #[serde(default = "default_retain_secs")]
    pub retain_secs: u64,
}

/// 30 days.
fn default_retain_secs() -> u64 {
    2_592_000
}

/// The longest retention taken: ten years.
pub const MAX_RETAIN_SECS: u64 = 10 * 365 * 86_400;

impl Default for ChangesConfig {
    fn default() -> Self {
        ChangesConfig {
            retain_secs: default_retain_secs(),
        }
    }
}

/// The audit console: HTTPS pages for operators and inspectors, with the server certificate
/// and client CA of `[tls]` (one CA, one set of certificates to manage).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Where the console listens; keep it on an interface inspectors can reach and agencies
    /// need not.
    pub listen: SocketAddr,
    /// The audit public keys (64 hex digits each, as `certs audit-key` writes them) that
    /// "verify now" checks checkpoint signatures with, oldest first, as `audit verify
    /// --pubkey`. Empty: signatures are not checked, and the page says so. Kept here rather
    /// than derived from `[audit] signing_key`: after a rotation the older keys are needed
    /// too, and a key read from next to the log proves less than one an operator names.
    #[serde(default)]
    pub pubkeys: Vec<PathBuf>,
}

/// Overload protection for the whole process (per-client rates are on each client).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests being served at once, all clients together; past it calls are shed with
    /// UNAVAILABLE at once instead of queueing until they time out.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Client connections open at once; past it the gateway stops accepting until one
    /// closes (new ones wait in the kernel's backlog). Each connection holds TLS and HTTP/2
    /// buffers, so this bounds memory whatever the clients do.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// HTTP/2 streams one connection may have open at once.
    #[serde(default = "default_max_streams")]
    pub max_streams_per_connection: u32,
    /// The largest request message accepted.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Redis (`redis://host:port`) keeping every client's rate for all the nodes of a
    /// cluster together; absent: each node limits on its own.
    pub shared_url: Option<String>,
}

fn default_max_in_flight() -> usize {
    4096
}
fn default_max_connections() -> usize {
    1024
}
fn default_max_streams() -> u32 {
    256
}
fn default_max_message_bytes() -> usize {
    // A full Follow batch (10,000 ids, about 140 KB) must fit (CONTRACT §5).
    256 * 1024
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_in_flight: default_max_in_flight(),
            max_connections: default_max_connections(),
            max_streams_per_connection: default_max_streams(),
            max_message_bytes: default_max_message_bytes(),
            shared_url: None,
        }
    }
}

/// What a caller is allowed to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// IdentityGateway: Lookup, Verify and their streams.
    Agency,
    /// RegistryAdmin: PutCitizen.
    Registry,
    /// Operator: GetStats, and the audit console.
    Operator,
    /// The audit console only, read-only: no gRPC method at all.
    Inspector,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Agency => "agency",
            Role::Registry => "registry",
            Role::Operator => "operator",
            Role::Inspector => "inspector",
        }
    }

    /// Whether the role may open the audit console.
    pub fn may_use_console(self) -> bool {
        matches!(self, Role::Operator | Role::Inspector)
    }
}

/// Informational: what kind of body the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    Telecom,
    Utility,
    Ministry,
    Locality,
    Registry,
    Operator,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The Common Name of the client's certificate.
    pub id: String,
    pub kind: ClientKind,
    pub role: Role,
    /// Fields Lookup may release to this client.
    #[serde(default)]
    pub read: Vec<String>,
    /// Fields Verify may check for this client (nothing is released).
    #[serde(default)]
    pub verify: Vec<String>,
    /// The purposes this client may state; a request with another is refused.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// Sustained requests per second; required, so that no client is unlimited by accident.
    pub rate_per_sec: Option<u32>,
    /// Requests allowed at once above the rate; defaults to `rate_per_sec`.
    pub burst: Option<u32>,
}

impl ClientConfig {
    /// The client's `read` rights as a set (valid once the config is validated).
    pub fn read_set(&self) -> FieldSet {
        self.read
            .iter()
            .filter_map(|n| Field::from_name(n))
            .collect()
    }

    /// The client's `verify` rights as a set (valid once the config is validated).
    pub fn verify_set(&self) -> FieldSet {
        self.verify
            .iter()
            .filter_map(|n| Field::from_name(n))
            .collect()
    }
}

impl Config {
    /// Reads, parses and validates `path`; relative paths inside are resolved against its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text without validating or resolving paths.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<text>".into(),
            message: e.to_string().replace('\n', " ").trim().to_string(),
        })
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.tls.cert);
        join(&mut self.tls.key);
        join(&mut self.tls.client_ca);
        if let Some(crl) = &mut self.tls.crl {
            join(crl);
        }
        if let Some(p) = &mut self.store.path {
            join(p);
        }
        if !self.audit.dir.as_os_str().is_empty() {
            join(&mut self.audit.dir);
        }
        if let Some(k) = &mut self.audit.signing_key {
            join(k);
        }
        if let Some(c) = &mut self.console {
            c.pubkeys.iter_mut().for_each(join);
        }
    }

    /// Checks everything that can be checked without starting: files exist, values are in
    /// range, clients are well formed and unique. Certificates are parsed when TLS is built.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let must_exist = |key: &str, p: &Path| {
            if p.is_file() {
                Ok(())
            } else {
                Err(invalid(
                    key,
                    format!("file {} does not exist or is not a file", p.display()),
                ))
            }
        };
        must_exist("tls.cert", &self.tls.cert)?;
        must_exist("tls.key", &self.tls.key)?;
        must_exist("tls.client_ca", &self.tls.client_ca)?;
        if let Some(crl) = &self.tls.crl {
            must_exist("tls.crl", crl)?;
        }
        if let Some(k) = &self.audit.signing_key {
            must_exist("audit.signing_key", k)?;
        }
        if self.audit.durability == Durability::Batch
            && !(1..=10_000).contains(&self.audit.flush_ms)
        {
            return Err(invalid("audit.flush_ms", "must be between 1 and 10000"));
        }
        if self.audit.roll_bytes < 4096 {
            return Err(invalid("audit.roll_bytes", "must be at least 4096"));
        }
        if self.audit.checkpoint_every == 0 || self.audit.checkpoint_secs == 0 {
            return Err(invalid(
                "audit.checkpoint_every",
                "checkpoint_every and checkpoint_secs must be at least 1",
            ));
        }
        self.validate_store()?;
        self.validate_audit_backend()?;
        if let Some(c) = &self.console {
            if c.listen == self.server.listen && c.listen.port() != 0 {
                return Err(invalid(
                    "console.listen",
                    "is server.listen: the console needs a port of its own",
                ));
            }
            if self.server.metrics_listen == Some(c.listen) && c.listen.port() != 0 {
                return Err(invalid(
                    "console.listen",
                    "is server.metrics_listen: the console needs a port of its own",
                ));
            }
            for (i, k) in c.pubkeys.iter().enumerate() {
                let key = format!("console.pubkeys[{i}]");
                must_exist(&key, k)?;
                crate::audit::checkpoint::PublicKey::from_hex_file(k)
                    .map_err(|why| invalid(key, why))?;
            }
        }
        if !(16..=crate::store::sled::MAX_CACHE_MIB).contains(&self.store.cache_mib) {
            return Err(invalid(
                "store.cache_mib",
                "must be between 16 and 1048576 (MiB of sled's page cache)",
            ));
        }
        if self.cache.capacity > 0 && self.cache.ttl_secs == 0 {
            return Err(invalid(
                "cache.ttl_secs",
                "must be at least 1 (set cache.capacity = 0 to turn the cache off)",
            ));
        }
        if !(60..=MAX_RETAIN_SECS).contains(&self.changes.retain_secs) {
            return Err(invalid(
                "changes.retain_secs",
                format!(
                    "must be between 60 and {MAX_RETAIN_SECS} (seconds a change is kept for watchers to resume; default 2592000, 30 days)"
                ),
            ));
        }
        if self.limits.max_in_flight == 0 {
            return Err(invalid("limits.max_in_flight", "must be at least 1"));
        }
        if self.limits.max_connections == 0 {
            return Err(invalid("limits.max_connections", "must be at least 1"));
        }
        if self.limits.max_streams_per_connection == 0 {
            return Err(invalid(
                "limits.max_streams_per_connection",
                "must be at least 1",
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.limits.max_message_bytes) {
            return Err(invalid(
                "limits.max_message_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        if let Some(url) = &self.limits.shared_url {
            let ok = url.starts_with("redis://") || url.starts_with("rediss://");
            if !ok || redis::Client::open(url.as_str()).is_err() {
                return Err(invalid(
                    "limits.shared_url",
                    format!("{url:?} is not a Redis URL: redis://HOST:PORT[/DB]"),
                ));
            }
        }
        let mut seen = HashSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            validate_client(i, c)?;
            if !seen.insert(c.id.as_str()) {
                return Err(invalid(
                    format!("clients[{i}].id"),
                    format!("duplicate client id {:?}: each id may appear once", c.id),
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    /// The store's keys for its backend, and `[cluster]` where one is needed. The database is
    /// not reached: a URL is checked for form only.
    fn validate_audit_backend(&self) -> Result<(), ConfigError> {
        match self.audit.backend {
            AuditBackend::File if self.audit.dir.as_os_str().is_empty() => Err(invalid(
                "audit.dir",
                "missing: the folder of the audit files (or backend = \"postgres\" with a PostgreSQL store)",
            )),
            AuditBackend::Postgres if self.store.backend != StoreBackend::Postgres => Err(invalid(
                "audit.backend",
                "\"postgres\" keeps the audit log in the store's database: it needs [store] backend = \"postgres\"",
            )),
            _ => Ok(()),
        }
    }

    fn validate_store(&self) -> Result<(), ConfigError> {
        match self.store.backend {
            StoreBackend::Sled => {
                if self.store.path.is_none() {
                    return Err(invalid(
                        "store.path",
                        "missing: the directory of the sled store (or set backend = \"postgres\" and url)",
                    ));
                }
                if self.store.url.is_some() {
                    return Err(invalid("store.url", "only for backend = \"postgres\""));
                }
                if self.cluster.is_some() {
                    return Err(invalid(
                        "cluster",
                        "a cluster needs backend = \"postgres\" in [store]: sled serves one node",
                    ));
                }
            }
            StoreBackend::Postgres => {
                if self.store.path.is_some() {
                    return Err(invalid(
                        "store.path",
                        "only for backend = \"sled\"; PostgreSQL is reached through store.url",
                    ));
                }
                let Some(url) = &self.store.url else {
                    return Err(invalid(
                        "store.url",
                        "missing: the database, e.g. postgresql://popgate@db1:5432,db2:5432/popgate?target_session_attrs=read-write",
                    ));
                };
                crate::store::postgres::DbUrl::parse(url).map_err(|e| invalid("store.url", e))?;
                let Some(cluster) = &self.cluster else {
                    return Err(invalid(
                        "cluster.node_id",
                        "missing: backend = \"postgres\" needs [cluster] node_id, unique among the nodes",
                    ));
                };
                if !valid_node_id(&cluster.node_id) {
                    return Err(invalid(
                        "cluster.node_id",
                        format!("{:?}: use 1-32 of a-z 0-9 -", cluster.node_id),
                    ));
                }
                if !(200..=60_000).contains(&cluster.lease_ms) {
                    return Err(invalid("cluster.lease_ms", "must be between 200 and 60000"));
                }
            }
        }
        Ok(())
    }

    /// This node's id in the cluster; empty for a single node.
    pub fn node_id(&self) -> &str {
        self.cluster.as_ref().map_or("", |c| c.node_id.as_str())
    }
}

/// A node id names the node in leases, the audit log and metrics: keep it plain.
pub fn valid_node_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A client id is a certificate CN and a file name in `certs/`: keep it plain.
pub fn valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

fn validate_client(i: usize, c: &ClientConfig) -> Result<(), ConfigError> {
    let key = |k: &str| format!("clients[{i}].{k}");
    if !valid_client_id(&c.id) {
        return Err(invalid(
            key("id"),
            format!(
                "{:?} is not a valid client id: use 1-64 of a-z 0-9 . _ -, starting with a letter or digit",
                c.id
            ),
        ));
    }
    let ctx = |k: &str| format!("{} (client {:?})", key(k), c.id);
    for (list, name) in [(&c.read, "read"), (&c.verify, "verify")] {
        let mut seen = HashSet::new();
        for f in list {
            if Field::from_name(f).is_none() {
                let why = if Field::is_always_returned(f) {
                    format!("{f:?} is not personal data: it always comes back and is not a right")
                } else {
                    let names: Vec<_> = Field::ALL.iter().map(|f| f.name()).collect();
                    format!("{f:?} is not a Citizen field; valid: {}", names.join(", "))
                };
                return Err(invalid(ctx(name), why));
            }
            if !seen.insert(f) {
                return Err(invalid(ctx(name), format!("{f:?} is listed twice")));
            }
        }
    }
    for p in &c.purposes {
        if p.trim().is_empty() || p.len() > 128 {
            return Err(invalid(
                ctx("purposes"),
                "a purpose must be 1-128 characters, not blank",
            ));
        }
    }
    if c.role == Role::Agency && c.purposes.is_empty() {
        return Err(invalid(
            ctx("purposes"),
            "an agency needs at least one purpose: every request must state one of them",
        ));
    }
    match c.rate_per_sec {
        None => {
            return Err(invalid(
                ctx("rate_per_sec"),
                "missing: every client needs a rate (requests per second)",
            ));
        }
        Some(0) => return Err(invalid(ctx("rate_per_sec"), "must be at least 1")),
        Some(_) => {}
    }
    if c.burst == Some(0) {
        return Err(invalid(ctx("burst"), "must be at least 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:7443"
metrics_listen = "127.0.0.1:9464"

[tls]
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"

[store]
path = "data/population"

[audit]
dir = "data/audit"
durability = "sync"
flush_ms = 5

[cache]
capacity = 1000
ttl_secs = 300

[[clients]]
id = "viettel"
kind = "telecom"
role = "agency"
read = []
verify = ["full_name", "date_of_birth"]
purposes = ["subscriber-verification"]
rate_per_sec = 2000
burst = 4000
"#;

    fn with_files(text: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        for f in ["server.pem", "server.key", "ca.pem"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let path = dir.path().join("popgate.toml");
        std::fs::write(&path, text).unwrap();
        let r = Config::load(&path);
        (dir, r)
    }

    fn err(text: &str) -> String {
        with_files(text).1.unwrap_err().to_string()
    }

    #[test]
    fn the_contract_example_loads_with_paths_resolved() {
        let (dir, r) = with_files(GOOD);
        let c = r.unwrap();
        assert_eq!(c.tls.cert, dir.path().join("server.pem"));
        assert_eq!(
            c.clients[0].verify_set().names(),
            ["full_name", "date_of_birth"]
        );
        assert_eq!(c.audit.durability, Durability::Sync);
    }

    #[test]
    fn the_console_is_off_without_its_section_and_typed_with_it() {
        let (_d, r) = with_files(GOOD);
        assert_eq!(r.unwrap().console, None);
        let (dir, r) = with_files(&format!("{GOOD}\n[console]\nlisten = \"127.0.0.1:9443\"\n"));
        let c = r.unwrap().console.expect("console");
        assert_eq!(c.listen, "127.0.0.1:9443".parse().unwrap());
        assert!(c.pubkeys.is_empty());
        drop(dir);
        let (_d, r) = with_files(&GOOD.replace("role = \"agency\"", "role = \"inspector\""));
        assert_eq!(r.unwrap().clients[0].role, Role::Inspector);
    }

    #[test]
    fn each_bad_config_names_its_key() {
        let cases = [
            (
                GOOD.replace("flush_ms = 5", "flush_ms = 5\nbogus = 1"),
                "bogus",
            ),
            (
                GOOD.replace("rate_per_sec = 2000\n", ""),
                "clients[0].rate_per_sec",
            ),
            (
                format!(
                    "{GOOD}\n[[clients]]\nid = \"viettel\"\nkind = \"telecom\"\nrole = \"agency\"\npurposes = [\"x\"]\nrate_per_sec = 1\n"
                ),
                "clients[1].id",
            ),
            (
                GOOD.replace("\"full_name\", \"date", "\"fullname\", \"date"),
                "clients[0].verify",
            ),
            (
                GOOD.replace("\"full_name\", \"date", "\"version\", \"date"),
                "clients[0].verify",
            ),
            (
                GOOD.replace("client_ca = \"ca.pem\"", "client_ca = \"nope.pem\""),
                "tls.client_ca",
            ),
            (GOOD.replace("role = \"agency\"", "role = \"king\""), "role"),
            (
                GOOD.replace("id = \"viettel\"", "id = \"../etc\""),
                "clients[0].id",
            ),
            (
                format!("{GOOD}\n[changes]\nretain_secs = 10\n"),
                "changes.retain_secs",
            ),
            (format!("{GOOD}\n[changes]\nretain = 3600\n"), "retain"),
            (
                format!("{GOOD}\n[console]\nlisten = \"127.0.0.1:9443\"\nport = 1\n"),
                "port",
            ),
            (
                format!("{GOOD}\n[console]\nlisten = \"nowhere\"\n"),
                "listen = \"nowhere\"",
            ),
            (
                format!("{GOOD}\n[console]\nlisten = \"127.0.0.1:7443\"\n"),
                "console.listen",
            ),
            (
                format!("{GOOD}\n[console]\nlisten = \"127.0.0.1:9443\"\npubkeys = [\"no.pub\"]\n"),
                "console.pubkeys[0]",
            ),
            (
                // A file, but not a public key.
                format!("{GOOD}\n[console]\nlisten = \"127.0.0.1:9443\"\npubkeys = [\"ca.pem\"]\n"),
                "console.pubkeys[0]",
            ),
        ];
        for (text, key) in cases {
            let e = err(&text);
            assert!(e.contains(key), "{key}: {e}");
        }
    }
}
