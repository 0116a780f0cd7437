//! Per-client rate limits and overload shedding (CONTRACT §1 "Rate limits"), through the real
//! server. Timing here is the real clock over a few seconds; tolerances are the issue's.

mod common;

use std::time::{Duration, Instant};

use common::{Options, TestGateway, citizen, lookup_req, put};
use popgate::pb;
use tonic::Code;

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
        ..Default::default()
    })
    .await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    gw
}

/// Sends unary lookups as `id` from `workers` tasks over `conns` connections until
/// `deadline`; returns (granted, limited, other errors).
async fn flood(
    gw: &TestGateway,
    id: &str,
    conns: usize,
    workers: usize,
    for_: Duration,
) -> (u64, u64, u64) {
    let deadline = Instant::now() + for_;
    let mut tasks = Vec::new();
    let mut channels = Vec::new();
    for _ in 0..conns {
        channels.push(gw.channel(id).await);
    }
    for w in 0..workers {
        let mut c =
            pb::identity_gateway_client::IdentityGatewayClient::new(channels[w % conns].clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut limited, mut other) = (0u64, 0u64, 0u64);
            while Instant::now() < deadline {
                match c.lookup(lookup_req(ID, &["full_name"], "p")).await {
                    Ok(_) => ok += 1,
                    Err(e) if e.code() == Code::ResourceExhausted => {
                        assert!(e.metadata().get("retry-after-ms").is_some());
                        limited += 1
                    }
                    Err(_) => other += 1,
                }
            }
            (ok, limited, other)
        }));
    }
    let mut total = (0, 0, 0);
    for t in tasks {
        let (a, b, c) = t.await.unwrap();
        total = (total.0 + a, total.1 + b, total.2 + c);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_granted_burst_plus_rate_times_time() {
    let gw = start(clients(300, 100, 1000, 1000)).await;
    let started = Instant::now();
    let (ok, limited, other) = flood(&gw, "a", 2, 16, Duration::from_secs(3)).await;
    let secs = started.elapsed().as_secs_f64();
    let expected = 100.0 + 300.0 * secs;
    assert_eq!(other, 0);
    assert!(limited > 0);
    let ratio = ok as f64 / expected;
    assert!(
        (0.95..=1.05).contains(&ratio),
        "granted {ok}, expected {expected:.0} ({ratio:.3})"
    );
}

#[tokio::test]
async fn a_refused_unary_call_says_when_to_retry() {
    let gw = start(clients(1, 1, 1000, 1000)).await;
    let mut c = gw.agency("a").await;
    c.lookup(lookup_req(ID, &["full_name"], "p")).await.unwrap();
    let e = c
        .lookup(lookup_req(ID, &["full_name"], "p"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    let ms: u64 = e
        .metadata()
        .get("retry-after-ms")
        .expect("retry-after-ms")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1000).contains(&ms), "{ms}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_client_does_not_refuse_another() {
    let gw = start(clients(100, 100, 200, 50)).await;
    let secs = 3;
    let flood_a = async { flood(&gw, "a", 3, 12, Duration::from_secs(secs)).await };
    // B sends at 80% of its rate, evenly.
    let steady_b = async {
        let mut c = gw.agency("b").await;
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / 160));
        let (mut ok, mut limited) = (0u64, 0u64);
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            tick.tick().await;
            match c.lookup(lookup_req(ID, &["full_name"], "p")).await {
                Ok(_) => ok += 1,
                Err(e) if e.code() == Code::ResourceExhausted => limited += 1,
                Err(e) => panic!("{e}"),
            }
        }
        (ok, limited)
    };
    let ((_, a_limited, _), (b_ok, b_limited)) = tokio::join!(flood_a, steady_b);
    assert!(a_limited > 0, "A must have been over its rate");
    assert_eq!(b_limited, 0, "B was refused {b_limited} times");
    assert!(b_ok > 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_stream_is_paced_not_failed() {
    let gw = start(clients(200, 20, 1000, 1000)).await;
    let n = 420usize;
    let reqs: Vec<_> = (0..n)
        .map(|i| pb::LookupRequest {
            request_id: i.to_string(),
            ..lookup_req(ID, &["full_name"], "p")
        })
        .collect();
    let started = Instant::now();
    let mut out = gw
        .agency("a")
        .await
        .lookup_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let mut answered = 0;
    while let Some(r) = out.message().await.unwrap() {
        assert!(
            r.error.is_none(),
            "item {} failed: {:?}",
            r.request_id,
            r.error
        );
        assert_eq!(r.request_id, answered.to_string());
        answered += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(answered, n);
    // (n - burst) items at 200/s: 2 s. Paced, so not much faster; and not stalled.
    assert!(secs >= 2.0 * 0.9, "{secs:.2}s: not paced");
    assert!(secs <= 2.0 * 1.5, "{secs:.2}s: slower than the rate");
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
