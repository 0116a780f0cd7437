//! Who is looking: the client certificate of the TLS session, as the policy in force sees
//! it. Only a configured, unrevoked client of role `operator` or `inspector` gets a page; the
//! certificate's CN must name one, exactly as for a gRPC call.

use std::sync::Arc;

use crate::config::Role;
use crate::identity::Peer;
use crate::policy::{Policy, truncate};

/// A viewer let in.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub id: Arc<str>,
    pub role: Role,
    pub peer: Arc<Peer>,
}

/// Decides whether `peer` may see the console; `Err` says why not, for the 403 page.
pub fn admit(policy: &Policy, peer: &Arc<Peer>) -> Result<Viewer, String> {
    let client = policy.authenticate(peer).map_err(|e| e.to_string())?;
    if !client.role.may_use_console() {
        return Err(format!(
            "client {:?} has role {:?}; the audit console is for roles \"operator\" and \"inspector\"",
            truncate(&client.id, 64),
            client.role.name()
        ));
    }
    Ok(Viewer {
        id: client.id.clone(),
        role: client.role,
        peer: peer.clone(),
    })
}
