//! GetStats: counters since start-up and the store's size.

use super::{Call, Gateway, Handler};
use crate::error::Error;
use crate::metrics::{ClientStats, reuse_rate};
use crate::policy::{Client, Method};

#[derive(Debug, Clone, Copy, Default)]
pub struct StatsRequest;

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub requests: u64,
    pub reused: u64,
    pub reuse_rate: f64,
    pub clients: Vec<ClientStats>,
    /// Citizens in the store.
    pub records: u64,
    /// The node that answered; empty for a single node.
    pub node_id: String,
}

impl Handler for StatsRequest {
    const METHOD: Method = Method::GetStats;
    type Plan = ();
    type Answer = Stats;

    fn authorize(self, _client: &Client, _call: &mut Call) -> Result<(), Error> {
        Ok(())
    }

    async fn execute(_: (), gateway: &Gateway, _call: &mut Call) -> Result<Stats, Error> {
        let records = gateway
            .store
            .count()
            .await
            .map_err(|e| gateway.store_failed(e))?;
        let (clients, requests, reused) = gateway.metrics.client_stats();
        Ok(Stats {
            requests,
            reused,
            reuse_rate: reuse_rate(requests, reused),
            clients,
            records,
            node_id: gateway.node_id.clone(),
        })
    }
}
