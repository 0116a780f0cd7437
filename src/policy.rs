//! Who may do what: clients, their role, field rights and purposes (CONTRACT §1 "Rules").
//!
//! A [`Policy`] is built from the validated configuration and swapped whole on reload. Every
//! check here is a pure function of the policy and the request, answered with an
//! [`Error`] whose message names what is wrong; nothing here does I/O.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::config::{ClientConfig, ClientKind, Config, Role};
use crate::error::Error;
use crate::fields::{Field, FieldSet};
use crate::identity::Peer;

/// The audited methods, by their contract names, and the role each needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Lookup,
    Verify,
    PutCitizen,
    GetStats,
    Follow,
    Unfollow,
    /// The opening of a change stream, and each event of it that carries a citizen.
    WatchChanges,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Lookup,
        Method::Verify,
        Method::PutCitizen,
        Method::GetStats,
        Method::Follow,
        Method::Unfollow,
        Method::WatchChanges,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Lookup => "Lookup",
            Method::Verify => "Verify",
            Method::PutCitizen => "PutCitizen",
            Method::GetStats => "GetStats",
            Method::Follow => "Follow",
            Method::Unfollow => "Unfollow",
            Method::WatchChanges => "WatchChanges",
        }
    }

    /// The role a caller needs for this method.
    pub fn role(self) -> Role {
        match self {
            Method::Lookup
            | Method::Verify
            | Method::Follow
            | Method::Unfollow
            | Method::WatchChanges => Role::Agency,
            Method::PutCitizen => Role::Registry,
            Method::GetStats => Role::Operator,
        }
    }
}

/// One configured client.
#[derive(Debug)]
pub struct Client {
    /// Shared with every audit record of the client's calls.
    pub id: Arc<str>,
    pub kind: ClientKind,
    pub role: Role,
    /// Fields Lookup may release.
    pub read: FieldSet,
    /// Fields Verify may check.
    pub verify: FieldSet,
    pub purposes: HashSet<String>,
    pub rate_per_sec: u32,
    pub burst: u32,
}

impl Client {
    fn from_config(c: &ClientConfig) -> Client {
        let rate = c.rate_per_sec.unwrap_or(1).max(1);
        Client {
            id: c.id.as_str().into(),
            kind: c.kind,
            role: c.role,
            read: c.read_set(),
            verify: c.verify_set(),
            purposes: c.purposes.iter().cloned().collect(),
            rate_per_sec: rate,
            burst: c.burst.unwrap_or(rate).max(1),
        }
    }

    /// Refuses a method outside the client's role.
    pub fn require_role(&self, method: Method) -> Result<(), Error> {
        let role = method.role();
        if self.role == role {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "client {:?} has role {:?}; {} needs role {:?}",
                self.id,
                self.role.name(),
                method.name(),
                role.name()
            )))
        }
    }

    /// Refuses a purpose the client was not given.
    pub fn require_purpose(&self, purpose: &str) -> Result<(), Error> {
        if self.purposes.contains(purpose) {
            return Ok(());
        }
        let mut allowed: Vec<_> = self.purposes.iter().map(String::as_str).collect();
        allowed.sort_unstable();
        Err(Error::PermissionDenied(format!(
            "purpose {:?} is not allowed for client {:?}; allowed: {}",
            truncate(purpose, 64),
            self.id,
            allowed.join(", ")
        )))
    }

    /// The fields a Lookup with `mask` releases: the mask checked against the read rights,
    /// or every readable field for an empty mask.
    pub fn read_fields(&self, mask: &[String]) -> Result<FieldSet, Error> {
        if self.read.is_empty() {
            return Err(Error::PermissionDenied(format!(
                "client {:?} may read no field: Lookup is not available to it (Verify may be)",
                self.id
            )));
        }
        if mask.is_empty() {
            return Ok(self.read);
        }
        let mut set = FieldSet::EMPTY;
        for path in mask {
            let field = parse_field("read_mask", path)?;
            if !self.read.contains(field) {
                return Err(Error::PermissionDenied(format!(
                    "read_mask: client {:?} may not read field {:?}",
                    self.id,
                    field.name()
                )));
            }
            set.insert(field);
        }
        Ok(set)
    }

    /// The fields a client may hear about in change events: its read and verify rights.
    /// A client with neither has nothing to follow or watch.
    pub fn change_rights(&self) -> Result<FieldSet, Error> {
        let rights = self.read.union(self.verify);
        if rights.is_empty() {
            return Err(Error::PermissionDenied(format!(
                "client {:?} may neither read nor verify any field: it has no changes to follow",
                self.id
            )));
        }
        Ok(rights)
    }

    /// The values a change stream with `mask` carries: each path must be within the read
    /// rights; an empty mask carries none (events then say only which fields changed).
    pub fn change_values(&self, mask: &[String]) -> Result<FieldSet, Error> {
        let mut set = FieldSet::EMPTY;
        for path in mask {
            let field = parse_field("read_mask", path)?;
            if !self.read.contains(field) {
                return Err(Error::PermissionDenied(format!(
                    "read_mask: client {:?} may not read field {:?}",
                    self.id,
                    field.name()
                )));
            }
            set.insert(field);
        }
        Ok(set)
    }

    /// Refuses a Verify claim on a field outside the verify rights.
    pub fn check_verify(&self, field: Field) -> Result<(), Error> {
        if self.verify.contains(field) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "claims.{}: client {:?} may not verify field {:?}",
                field.name(),
                self.id,
                field.name()
            )))
        }
    }
}

/// A read-mask path as a field, or `INVALID_ARGUMENT` naming it.
fn parse_field(what: &str, path: &str) -> Result<Field, Error> {
    Field::from_name(path).ok_or_else(|| {
        let why = if Field::is_always_returned(path) {
            "is not personal data and always comes back; leave it out of the mask"
        } else {
            "is not a Citizen field"
        };
        Error::InvalidArgument(format!("{what}: {:?} {why}", truncate(path, 64)))
    })
}

/// Cuts caller-supplied text echoed in a message, so a huge value cannot bloat logs.
pub fn truncate(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Every configured client, by certificate CN, plus the revoked certificate serials.
#[derive(Debug, Default)]
pub struct Policy {
    clients: HashMap<String, Arc<Client>>,
    revoked: Arc<HashSet<Vec<u8>>>,
}

impl Policy {
    pub fn new(config: &Config, revoked: Arc<HashSet<Vec<u8>>>) -> Policy {
        Policy {
            clients: config
                .clients
                .iter()
                .map(|c| (c.id.clone(), Arc::new(Client::from_config(c))))
                .collect(),
            revoked,
        }
    }

    /// The client behind `peer`: its certificate must not be revoked and its CN must be a
    /// configured client. Checked on every call, not once per connection.
    pub fn authenticate(&self, peer: &Peer) -> Result<Arc<Client>, Error> {
        if self.revoked.contains(&peer.serial) {
            return Err(Error::PermissionDenied(
                "client certificate has been revoked".into(),
            ));
        }
        let cn = peer.common_name.as_deref().unwrap_or("");
        self.clients.get(cn).cloned().ok_or_else(|| {
            Error::PermissionDenied(format!(
                "unknown client: certificate CN {:?} is not a configured client",
                truncate(cn, 64)
            ))
        })
    }

    pub fn clients(&self) -> impl Iterator<Item = &Arc<Client>> {
        self.clients.values()
    }

    /// The certificate serials the CRL revokes.
    pub fn revoked(&self) -> Arc<HashSet<Vec<u8>>> {
        self.revoked.clone()
    }
}
