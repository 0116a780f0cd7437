//! An agency's client in Rust with tonic: Lookup, Verify and a bulk VerifyStream over mTLS
//! against `popgate serve --dev`.
//!
//! ```sh
//! cargo run --release -- serve --dev                  # in another terminal
//! cargo run --example agency_client -- popgate-dev 001087000001
//! ```
//!
//! It uses the crate's generated types for brevity; an agency generates the same ones from
//! `proto/` with `tonic-prost-build`. The TLS setup is plain tonic: the CA that signed the
//! gateway, and the agency's own certificate and key.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use popgate::pb::identity_gateway_client::IdentityGatewayClient;
use popgate::pb::{Claims, LookupRequest, MatchMode, VerifyRequest};

async fn connect(
    certs: &Path,
    client_id: &str,
    addr: &str,
) -> Result<Channel, Box<dyn std::error::Error>> {
    let read = |name: String| std::fs::read_to_string(certs.join(name));
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem".into())?))
        .identity(Identity::from_pem(
            read(format!("{client_id}.pem"))?,
            read(format!("{client_id}.key"))?,
        ))
        .domain_name("localhost");
    // Keep this channel for the life of the process: a TLS handshake costs far more than a call.
    Ok(Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dev_dir = PathBuf::from(args.next().unwrap_or_else(|| "popgate-dev".into()));
    let citizen_id = args
        .next()
        .ok_or("usage: agency_client DEV_DIR CITIZEN_ID [ADDR]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7443".into());
    let certs = dev_dir.join("certs");

    // 1. A ministry reads the fields it may read (an empty mask means all of them).
    let mut moh = IdentityGatewayClient::new(connect(&certs, "moh", &addr).await?);
    let found = moh
        .lookup(LookupRequest {
            citizen_id: citizen_id.clone(),
            read_mask: None,
            purpose: "health-insurance".into(),
            request_id: "rust-lookup-1".into(),
        })
        .await?
        .into_inner();
    let citizen = found.citizen.ok_or("no citizen in the answer")?;
    println!(
        "Lookup: {} born {} (version {}, reused={}, audit_seq={})",
        citizen.full_name, citizen.date_of_birth, citizen.version, found.reused, found.audit_seq
    );

    // 2. A telecom checks a subscriber's claims; nothing is released.
    let mut viettel = IdentityGatewayClient::new(connect(&certs, "viettel", &addr).await?);
    let claims = Claims {
        full_name: Some(citizen.full_name.to_uppercase()),
        date_of_birth: Some(citizen.date_of_birth.clone()),
        ..Default::default()
    };
    let v = viettel
        .verify(VerifyRequest {
            citizen_id: citizen_id.clone(),
            claims: Some(claims.clone()),
            purpose: "subscriber-verification".into(),
            request_id: "rust-verify-1".into(),
            mode: MatchMode::Loose as i32,
        })
        .await?
        .into_inner();
    println!("Verify: matched={}", v.matched);
    if !v.matched {
        return Err("the citizen's own name and date of birth should match".into());
    }

    // 3. Bulk: one stream, answers in request order, failures reported per item.
    let requests: Vec<VerifyRequest> = (0..500)
        .map(|i| VerifyRequest {
            citizen_id: citizen_id.clone(),
            claims: Some(Claims {
                full_name: Some(if i % 10 == 0 {
                    "SOMEONE ELSE".into()
                } else {
                    citizen.full_name.clone()
                }),
                ..claims.clone()
            }),
            purpose: "subscriber-verification".into(),
            request_id: format!("bulk-{i}"),
            mode: MatchMode::Loose as i32,
        })
        .collect();
    let mut answers = viettel
        .verify_stream(tokio_stream::iter(requests))
        .await?
        .into_inner();
    let (mut matched, mut mismatched, mut failed) = (0, 0, 0);
    while let Some(a) = answers.message().await? {
        match (&a.error, a.matched) {
            (Some(_), _) => failed += 1,
            (None, true) => matched += 1,
            (None, false) => mismatched += 1,
        }
    }
    println!("VerifyStream: {matched} matched, {mismatched} mismatched, {failed} failed");
    if (matched, mismatched, failed) != (450, 50, 0) {
        return Err("unexpected bulk result".into());
    }
    println!("ok");
    Ok(())
}
