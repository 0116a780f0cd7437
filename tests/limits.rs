//! Per-client rate limits and overload shedding (CONTRACT §1 "Rate limits"), through the real
//! server. The gateway runs on a manual clock: time stands still while a test floods, and
//! moves only when the test says so, so every count here is exact.

mod common;

use std::time::Duration;

use common::{Options, TestGateway, citizen, lookup_req, put};
use popgate::pb;
use popgate::pb::identity_gateway_client::IdentityGatewayClient;
use tonic::Code;
use tonic::transport::Channel;

const ID: &str = "001087000001";

fn clients(rate_a: u32, burst_a: u32, rate_b: u32, burst_b: u32) -> String {
    format!(
        r#"
[[clients]]
id = "a"
kind = "telecom"
role = "agency"
read = ["full_name"]
verify = ["full_name"]
purposes = ["p"]
rate_per_sec = {rate_a}
burst = {burst_a}

[[clients]]
id = "b"
kind = "ministry"
role = "agency"
read = ["full_name"]
verify = ["full_name"]
purposes = ["p"]
rate_per_sec = {rate_b}
burst = {burst_b}

[[clients]]
id = "registry"
kind = "registry"
role = "registry"
rate_per_sec = 1000
burst = 1000
"#
    )
}

async fn start(clients_toml: String) -> TestGateway {
    let gw = TestGateway::start_with(Options {
        clients_toml,
        audit_toml: "durability = \"batch\"\nflush_ms = 5\n".into(),
        manual_clock: true,
        ..Default::default()
    })
    .await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    gw
}

/// The time until the next unit of capacity, from a refusal.
fn retry_after_ms(e: &tonic::Status) -> u64 {
    e.metadata()
        .get("retry-after-ms")
        .expect("retry-after-ms")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `callers` tasks over `channels` call until each is refused once; the calls granted. With
/// the clock standing still that is exactly the capacity there is, however many ask at once.
async fn drain(channels: &[Channel], callers: usize) -> u64 {
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let mut c = IdentityGatewayClient::new(channels[i % channels.len()].clone());
            tokio::spawn(async move {
                let mut ok = 0;
                loop {
                    match c.lookup(lookup_req(ID, &["full_name"], "p")).await {
                        Ok(_) => ok += 1,
                        Err(e) if e.code() == Code::ResourceExhausted => {
                            assert!(retry_after_ms(&e) >= 1);
                            return ok;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_granted_exactly_burst_plus_rate_times_time() {
    let gw = start(clients(300, 100, 1000, 1000)).await;
    let channels = [gw.channel("a").await, gw.channel("a").await];
    // Standing still: the burst, and not one call more, for 16 callers at once.
    assert_eq!(drain(&channels, 16).await, 100);
    // Then 3 s in steps of 100 ms: 30 calls a step (300/s), however many ask.
    let mut granted = 100;
    for step in 0..30 {
        gw.clock().advance(Duration::from_millis(100));
        let ok = drain(&channels, 16).await;
        assert_eq!(ok, 30, "step {step}");
        granted += ok;
    }
    assert_eq!(granted, 100 + 300 * 3);
}

#[tokio::test]
async fn a_refused_unary_call_says_exactly_when_to_retry() {
    let gw = start(clients(1, 1, 1000, 1000)).await;
    let mut c = gw.agency("a").await;
    c.lookup(lookup_req(ID, &["full_name"], "p")).await.unwrap();
    let e = c
        .lookup(lookup_req(ID, &["full_name"], "p"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert_eq!(retry_after_ms(&e), 1000);
    gw.clock().advance(Duration::from_millis(400));
    let e = c
        .lookup(lookup_req(ID, &["full_name"], "p"))
        .await
        .unwrap_err();
    assert_eq!(retry_after_ms(&e), 600);
    // Retrying when told succeeds.
    gw.clock().advance(Duration::from_millis(600));
    c.lookup(lookup_req(ID, &["full_name"], "p")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_client_does_not_refuse_another() {
    // A: 100/s, burst 100, sending 10x its rate over three connections. B: 200/s, burst 50,
    // sending 80% of its rate.
    let gw = start(clients(100, 100, 200, 50)).await;
    let a: Vec<_> = [
        gw.agency("a").await,
        gw.agency("a").await,
        gw.agency("a").await,
    ]
    .into();
    let b = gw.agency("b").await;
    let (mut a_ok, mut a_limited, mut b_ok) = (0u64, 0u64, 0u64);
    // 60 steps 50 ms apart: A sends 50 calls a step (1,000/s), B 8 (160/s), all at once.
    for step in 0..60 {
        if step > 0 {
            gw.clock().advance(Duration::from_millis(50));
        }
        let a_calls = (0..50).map(|i| {
            let mut c = a[i % a.len()].clone();
            async move { c.lookup(lookup_req(ID, &["full_name"], "p")).await }
        });
        let b_calls = (0..8).map(|_| {
            let mut c = b.clone();
            async move { c.lookup(lookup_req(ID, &["full_name"], "p")).await }
        });
        let (a_results, b_results) = tokio::join!(
            futures_util::future::join_all(a_calls),
            futures_util::future::join_all(b_calls)
        );
        for r in a_results {
            match r {
                Ok(_) => a_ok += 1,
                Err(e) if e.code() == Code::ResourceExhausted => a_limited += 1,
                Err(e) => panic!("{e}"),
            }
        }
        for r in b_results {
            r.expect("B is within its rate and must never be refused");
            b_ok += 1;
        }
    }
    assert_eq!(b_ok, 60 * 8);
    // A got its burst at the start and its rate over the 59 steps since (5 per 50 ms), no
    // more; the rest was refused.
    assert_eq!(a_ok, 100 + 5 * 59);
    assert_eq!(a_ok + a_limited, 60 * 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_stream_is_paced_not_failed() {
    // 420 items at 200/s with a burst of 20: the burst at once, then 20 per 100 ms of the clock.
    let gw = start(clients(200, 20, 1000, 1000)).await;
    // Whatever else sleeps on the clock (the gateway's periodic tasks).
    let others = gw.clock().sleepers();
    let n = 420u64;
    let reqs: Vec<_> = (0..n)
        .map(|i| pb::LookupRequest {
            request_id: i.to_string(),
            ..lookup_req(ID, &["full_name"], "p")
        })
        .collect();
    let mut out = gw
        .agency("a")
        .await
        .lookup_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let granted = |gw: &TestGateway| -> u64 {
        let (clients, ..) = gw.gateway.metrics().client_stats();
        clients
            .iter()
            .find(|c| c.client_id == "a")
            .map_or(0, |c| c.requests)
    };
    let mut answered = 0u64;
    for step in 0..=20u64 {
        if step > 0 {
            gw.clock().advance(Duration::from_millis(100));
        }
        let allowed = 20 + 20 * step;
        while answered < allowed {
            let r = out
                .message()
                .await
                .unwrap()
                .expect("the stream ended early");
            assert!(
                r.error.is_none(),
                "item {} failed: {:?}",
                r.request_id,
                r.error
            );
            assert_eq!(r.request_id, answered.to_string(), "out of order");
            answered += 1;
        }
        if answered < n {
            // The next item waits on the clock: the gateway has done all it may at this time,
            // and it granted exactly what the rate allows so far, not one item more.
            gw.clock().until_sleepers(others + 1).await;
            assert_eq!(granted(&gw), allowed, "step {step}");
        }
    }
    assert!(out.message().await.unwrap().is_none());
    assert_eq!(answered, n);
}

#[tokio::test]
async fn past_the_in_flight_bound_calls_are_shed_and_admitted_ones_succeed() {
    let gw = TestGateway::start_with(Options {
        limits_toml: "max_in_flight = 4\n".into(),
        ..Default::default()
    })
    .await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    let mut c = gw.agency("ministry").await;
    // Occupy every place in flight, as four slow calls would.
    let held: Vec<_> = (0..4)
        .map(|_| gw.gateway.limits().admit().unwrap())
        .collect();
    let e = c
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains("overloaded"), "{}", e.message());
    drop(held);
    c.lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .expect("admitted once there is room");
}

#[tokio::test]
async fn refused_calls_are_audited_in_aggregate_not_one_by_one() {
    let gw = start(clients(1, 1, 1000, 1000)).await;
    let mut c = gw.agency("a").await;
    c.lookup(lookup_req(ID, &["full_name"], "p")).await.unwrap();
    for _ in 0..50 {
        let e = c
            .lookup(lookup_req(ID, &["full_name"], "p"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted);
    }
    gw.gateway.flush_rate_limited().await.unwrap();
    let records = common::audit_records(&gw.audit_dir());
    let limited: Vec<_> = records
        .iter()
        .filter(|r| r["outcome"] == "rate_limited")
        .collect();
    assert_eq!(
        limited.len(),
        1,
        "one record per client and method, not per call"
    );
    assert_eq!(limited[0]["count"], 50);
    assert_eq!(limited[0]["client"], "a");
    assert_eq!(limited[0]["method"], "Lookup");
    let (clients, ..) = gw.gateway.metrics().client_stats();
    let stats = clients.into_iter().find(|s| s.client_id == "a").unwrap();
    assert_eq!(stats.rate_limited, 50);
}

#[tokio::test]
async fn a_new_rate_takes_effect_on_reload() {
    let gw = start(clients(1000, 1000, 1000, 1000)).await;
    let mut c = gw.agency("a").await;
    for _ in 0..20 {
        c.lookup(lookup_req(ID, &["full_name"], "p")).await.unwrap();
    }
    gw.reload_clients(&clients(1, 2, 1000, 1000))
        .expect("reload");
    let mut refused = 0;
    for _ in 0..10 {
        if let Err(e) = c.lookup(lookup_req(ID, &["full_name"], "p")).await {
            assert_eq!(e.code(), Code::ResourceExhausted);
            refused += 1;
        }
    }
    // The new burst of 2, then nothing: the clock stands still.
    assert_eq!(refused, 8);
}

/// A Lookup whose encoded message is exactly `size` bytes (a read mask of one field named
/// many times, as valid as once, and a request id of the right length).
fn lookup_of_size(size: usize) -> pb::LookupRequest {
    use prost::Message;
    let mut req = lookup_req(ID, &["full_name"], "health-insurance");
    req.request_id.clear();
    while req.encoded_len() + 11 + 64 <= size {
        req.read_mask
            .as_mut()
            .unwrap()
            .paths
            .push("full_name".into());
    }
    while req.encoded_len() < size {
        req.request_id.push('x');
    }
    assert_eq!(req.encoded_len(), size);
    req
}

#[tokio::test]
async fn a_message_over_the_size_limit_gets_resource_exhausted_naming_the_limit() {
    let gw = TestGateway::start_with(Options {
        limits_toml: "max_message_bytes = 4096\n".into(),
        ..Default::default()
    })
    .await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    let mut c = gw.agency("ministry").await;
    // At the limit: served.
    let at = c
        .lookup(lookup_of_size(4096))
        .await
        .expect("a message at the limit");
    assert_eq!(at.into_inner().citizen.unwrap().full_name, "Nguyễn Văn An");
    // One byte over: RESOURCE_EXHAUSTED, saying which limit and where it is set.
    let e = c.lookup(lookup_of_size(4097)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("4096 bytes"), "{}", e.message());
    assert!(
        e.message().contains("[limits] max_message_bytes"),
        "{}",
        e.message()
    );
    // Not a rate refusal: no retry-after.
    assert!(e.metadata().get("retry-after-ms").is_none());
    // The connection and the gateway go on.
    c.lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .expect("the connection and the gateway go on");

    // In a stream: the item at the limit is answered, the one over it ends the stream so.
    let mut out = c
        .lookup_stream(tokio_stream::iter([
            lookup_of_size(4096),
            lookup_of_size(4097),
        ]))
        .await
        .unwrap()
        .into_inner();
    let first = out.message().await.unwrap().expect("the item at the limit");
    assert!(first.error.is_none(), "{:?}", first.error);
    let e = out.message().await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("[limits] max_message_bytes"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn connections_past_the_bound_wait_until_one_closes() {
    let gw = TestGateway::start_with(Options {
        limits_toml: "max_connections = 2\n".into(),
        ..Default::default()
    })
    .await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await; // over a connection that is then closed
    let mut first = gw.agency("ministry").await;
    let mut second = gw.agency("ministry").await;
    for c in [&mut first, &mut second] {
        c.lookup(lookup_req(ID, &["full_name"], "health-insurance"))
            .await
            .unwrap();
    }
    let mut at_bound = gw.connections.at_bound();
    let third = tokio::spawn({
        let addr = gw.addr.to_string();
        let tls = gw.tls_for("ministry");
        async move {
            let ch = popgate::client::connect(&addr, "localhost", &tls).await?;
            IdentityGatewayClient::new(ch)
                .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            anyhow::Ok(())
        }
    });
    // Both places taken: the server stops accepting (the third waits in the kernel's backlog)
    // and says so; it accepts nothing while it waits.
    at_bound.wait_for(|b| *b).await.unwrap();
    assert_eq!(gw.connections.open(), 2);
    assert!(
        !third.is_finished(),
        "a third connection was served past the bound"
    );
    // Once one closes, the third is served.
    drop(first);
    tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("served after a place freed up")
        .unwrap()
        .unwrap();
    assert!(gw.scrape().await.contains("popgate_connections_open 2"));
}

#[tokio::test]
async fn refusals_cannot_flood_the_audit_log() {
    let gw = start(clients(1, 1, 1000, 1000)).await;
    // A configured agency calling a method outside its role, fast.
    let mut op = pb::operator_client::OperatorClient::new(gw.channel("a").await);
    for _ in 0..30 {
        let e = op.get_stats(pb::GetStatsRequest {}).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
    }
    // A certificate from our CA whose name is no client, 250 calls at once.
    let stranger = gw.agency("stranger").await;
    let n_unknown = 250;
    let calls = (0..n_unknown).map(|_| {
        let mut c = stranger.clone();
        async move { c.lookup(lookup_req(ID, &["full_name"], "p")).await }
    });
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.unwrap_err().code(), Code::PermissionDenied);
    }
    gw.gateway.flush_rate_limited().await.unwrap();
    let records = common::audit_records(&gw.audit_dir());
    let count = |client: &str, outcome: &str| -> (usize, u64) {
        let rs: Vec<_> = records
            .iter()
            .filter(|r| r["client"] == client && r["outcome"] == outcome)
            .collect();
        let n = rs.iter().map(|r| r["count"].as_u64().unwrap_or(1)).sum();
        (rs.len(), n)
    };
    // a's own rate (1/s, burst 1) bounds its individual records: one, and one aggregate.
    assert_eq!(count("a", "denied"), (1, 1));
    assert_eq!(count("a", "rate_limited"), (1, 29));
    // Unknown names share 100/s with a burst of 100: the clock stood still.
    assert_eq!(count("stranger", "denied"), (100, 100));
    assert_eq!(count("(unknown)", "rate_limited"), (1, 150));
}
