//! Reaching the database: the `[store] url`, connections with TLS where it asks for it, and
//! connections that come back by themselves.
//!
//! tokio-postgres pipelines the queries of every task that shares a `Client`, so reads share a
//! few long-lived connections and never check one out; a transaction needs a connection of its
//! own, so writes take one of a few, each behind a lock. The multi-host URL with
//! `target_session_attrs=read-write` is tokio-postgres's own: it tries the hosts in order and
//! takes the one that accepts writes, so after a failover the promoted standby is found.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::StreamExt;
use tokio::sync::{Mutex, MutexGuard, mpsc, watch};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Notification, Socket};

use super::tls::RustlsConnector;
use crate::store::StoreError;

/// A validated `[store] url`: what tokio-postgres takes, and the CA file it does not.
#[derive(Clone)]
pub struct DbUrl {
    config: Config,
    ca: Option<PathBuf>,
}

impl std::fmt::Debug for DbUrl {
    /// Hosts, port and database only: the URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

impl DbUrl {
    /// Parses a libpq-style URL (`postgresql://user@host1:5432,host2:5432/db?…`) or key=value
    /// string. `sslrootcert=FILE` names the CA of the server's certificate and turns TLS on;
    /// `sslmode=verify-full` and `verify-ca` are taken as `require` (rustls always verifies the
    /// chain and the host name).
    pub fn parse(url: &str) -> Result<DbUrl, String> {
        let mut ca = None;
        let mut kept = Vec::new();
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        for param in query.into_iter().flat_map(|q| q.split('&')) {
            match param.split_once('=') {
                Some(("sslrootcert", v)) if !v.is_empty() => ca = Some(PathBuf::from(v)),
                Some(("sslmode", "verify-full" | "verify-ca")) => kept.push("sslmode=require"),
                _ => kept.push(param),
            }
        }
        let rebuilt = match kept.is_empty() {
            true => base.to_owned(),
            false => format!("{base}?{}", kept.join("&")),
        };
        let config = Config::from_str(&rebuilt).map_err(|e| e.to_string())?;
        if config.get_hosts().is_empty() {
            return Err("names no host".into());
        }
        if config.get_dbname().is_none() {
            return Err("names no database (…/DBNAME)".into());
        }
        Ok(DbUrl { config, ca })
    }

    /// `host1,host2:port/db` for messages and logs.
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(s) => s.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = self.config.get_ports().iter().map(u16::to_string).collect();
        format!(
            "{} port {} database {}",
            hosts.join(","),
            if ports.is_empty() {
                "5432".to_owned()
            } else {
                ports.join(",")
            },
            self.config.get_dbname().unwrap_or("")
        )
    }

    /// The connector for this URL: TLS when it names a CA. `name` goes to the database as the
    /// connections' `application_name` (a node's connections can be told apart there).
    pub fn connector(&self, name: &str) -> Result<Db, String> {
        let tls = match &self.ca {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                Some(
                    RustlsConnector::new(&pem)
                        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?,
                )
            }
        };
        let mut config = self.config.clone();
        config.connect_timeout(Duration::from_secs(5));
        config.keepalives_idle(Duration::from_secs(10));
        config.application_name(name);
        Ok(Db {
            config: Arc::new(config),
            tls,
            describe: self.describe(),
        })
    }
}

/// How to open a connection to the database.
#[derive(Clone)]
pub struct Db {
    config: Arc<Config>,
    tls: Option<RustlsConnector>,
    describe: String,
}

/// An open connection: the client, the notifications it receives (`LISTEN`), and a signal
/// that its connection has ended.
pub struct Connection {
    pub client: Client,
    pub notifications: mpsc::UnboundedReceiver<Notification>,
    pub ended: watch::Receiver<bool>,
}

pub fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl Db {
    pub fn describe(&self) -> &str {
        &self.describe
    }

    pub async fn connect(&self) -> Result<Connection, StoreError> {
        let r = match &self.tls {
            None => connect_with(&self.config, NoTls).await,
            Some(tls) => connect_with(&self.config, tls.clone()).await,
        };
        r.map_err(|e| StoreError::Unavailable(format!("cannot connect to {}: {e}", self.describe)))
    }
}

/// Connects and drives the connection in a task of its own, handing its notifications over.
async fn connect_with<T>(config: &Config, tls: T) -> Result<Connection, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut conn) = config.connect(tls).await?;
    let (tx, notifications) = mpsc::unbounded_channel();
    let (ended_tx, ended) = watch::channel(false);
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = tx.send(n);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "database connection lost");
                    break;
                }
            }
        }
        ended_tx.send_replace(true);
    });
    Ok(Connection {
        client,
        notifications,
        ended,
    })
}

/// Waits before the next attempt to connect: 50 ms, doubling to 5 s.
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(50))
    }
}

impl Backoff {
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

/// A read connection with its prepared statements, kept open (and reopened) by a task.
pub struct Reader {
    pub client: Client,
    pub get: tokio_postgres::Statement,
    pub count: tokio_postgres::Statement,
}

const GET: &str = "SELECT record FROM citizens WHERE id = $1";
const COUNT: &str = "SELECT citizens FROM counters WHERE id = 1";

/// A few shared read connections, taken in turn.
pub struct Readers {
    slots: Vec<Arc<ArcSwapOption<Reader>>>,
    next: AtomicUsize,
}

impl Readers {
    /// Starts `n` connections' keepers; each reconnects with backoff when its connection ends.
    pub fn start(db: &Db, n: usize) -> Readers {
        let slots: Vec<_> = (0..n).map(|_| Arc::new(ArcSwapOption::empty())).collect();
        for slot in &slots {
            let (db, slot) = (db.clone(), slot.clone());
            tokio::spawn(async move {
                let mut backoff = Backoff::default();
                loop {
                    match open_reader(&db).await {
                        Ok((reader, mut ended)) => {
                            backoff = Backoff::default();
                            slot.store(Some(Arc::new(reader)));
                            let _ = ended.wait_for(|e| *e).await;
                            slot.store(None);
                        }
                        Err(e) => tracing::debug!(error = %e, "read connection not open yet"),
                    }
                    // The slot is held only by the store: once it is gone, stop.
                    if Arc::strong_count(&slot) == 1 {
                        return;
                    }
                    backoff.wait().await;
                }
            });
        }
        Readers {
            slots,
            next: AtomicUsize::new(0),
        }
    }

    /// An open read connection, the next in turn that is up.
    pub fn get(&self) -> Result<Arc<Reader>, StoreError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.slots.len() {
            if let Some(r) = self.slots[(start + i) % self.slots.len()].load_full()
                && !r.client.is_closed()
            {
                return Ok(r);
            }
        }
        Err(StoreError::Unavailable(
            "no connection to the database is open".into(),
        ))
    }
}

async fn open_reader(db: &Db) -> Result<(Reader, watch::Receiver<bool>), StoreError> {
    let c = db.connect().await?;
    let get = c.client.prepare(GET).await.map_err(unavailable)?;
    let count = c.client.prepare(COUNT).await.map_err(unavailable)?;
    Ok((
        Reader {
            client: c.client,
            get,
            count,
        },
        c.ended,
    ))
}

/// A few write connections, each used by one transaction at a time and opened on demand.
pub struct Writers {
    db: Db,
    slots: Vec<Mutex<Option<WriteConn>>>,
    next: AtomicUsize,
}

/// A write connection and the statements prepared on it so far. A statement sent as text is
/// parsed and described by the server in a round trip of its own before it runs; a write
/// transaction is a handful of statements, several of them while the change log's row lock is
/// held, so each is prepared once per connection.
pub struct WriteConn {
    pub client: Client,
    prepared: std::collections::HashMap<&'static str, tokio_postgres::Statement>,
}

impl WriteConn {
    /// `sql` prepared on this connection (at its first use here).
    pub async fn statement(
        &mut self,
        sql: &'static str,
    ) -> Result<tokio_postgres::Statement, StoreError> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await.map_err(unavailable)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }
}

impl Writers {
    pub fn new(db: &Db, n: usize) -> Writers {
        Writers {
            db: db.clone(),
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// A write connection for one transaction: a free one if there is, else the next in turn,
    /// (re)opened if it was closed.
    pub async fn get(&self) -> Result<MutexGuard<'_, Option<WriteConn>>, StoreError> {
        let mut guard = None;
        for slot in &self.slots {
            if let Ok(g) = slot.try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut guard = match guard {
            Some(g) => g,
            None => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
                self.slots[i].lock().await
            }
        };
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            *guard = Some(WriteConn {
                client: self.db.connect().await?.client,
                prepared: Default::default(),
            });
        }
        Ok(guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_without_connecting() {
        let u = DbUrl::parse(
            "postgresql://popgate:secret@db1:5432,db2:5433/popgate?target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(u.describe(), "db1,db2 port 5432,5433 database popgate");
        assert!(!format!("{u:?}").contains("secret"));
        let tls = DbUrl::parse(
            "postgresql://p@db/popgate?sslmode=verify-full&sslrootcert=/etc/popgate/db-ca.pem",
        )
        .unwrap();
        assert_eq!(tls.ca, Some(PathBuf::from("/etc/popgate/db-ca.pem")));
        for bad in [
            "postgresql://db/popgate?bogus=1",
            "postgresql://db/popgate?sslmode=sometimes",
            "postgresql://db",
            "not a url at all =",
        ] {
            assert!(DbUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
