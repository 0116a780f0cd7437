//! Renewing an agency's certificate does not stop the agency (issue 19): through the real
//! server, a client keeps calling on its old certificate while its renewal comes into use; no
//! call fails. Once the old one is revoked and the CRL reloaded, the old certificate is refused
//! (on its open connection and in the handshake of a new one) and the new one goes on. The
//! expiry gauge follows, and the audit log tells the two certificates apart.

mod common;

use std::process::Command;

use common::{TestGateway, citizen, lookup_req, put};
use popgate::pb::identity_gateway_client::IdentityGatewayClient;
use popgate::pki::ClientOptions;
use tonic::Code;
use tonic::transport::Channel;

const ID: &str = "001087000001";

async fn lookup(c: &mut IdentityGatewayClient<Channel>) -> Result<(), tonic::Status> {
    c.lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .map(|r| assert_eq!(r.into_inner().citizen.unwrap().full_name, "Nguyễn Văn An"))
}

/// `popgate_client_certificate_expiry_days{client="ministry"}`, if the series exists.
async fn expiry_days(gw: &TestGateway) -> Option<f64> {
    let text = gw.scrape().await;
    text.lines()
        .find(|l| l.starts_with(r#"popgate_client_certificate_expiry_days{client="ministry"}"#))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

/// Lowercase hex SHA-256 of a certificate's DER, as the audit log's `cert_sha256`.
fn fingerprint(cert_pem: &str) -> String {
    let der = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    ring::digest::digest(&ring::digest::SHA256, der.as_ref())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_renewal_overlaps_without_a_failed_call_and_revoking_the_old_certificate_ends_it() {
    let gw = TestGateway::start().await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    assert_eq!(expiry_days(&gw).await, None, "no call yet, no series");

    // The agency runs on its old certificate (a year), calling all the time.
    let old = gw.cert("ministry");
    let mut on_old = IdentityGatewayClient::new(gw.channel_with(&old).await.unwrap());
    lookup(&mut on_old)
        .await
        .expect("the old certificate works");
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let caller = tokio::spawn(async move {
        let mut calls = 0u64;
        loop {
            lookup(&mut on_old)
                .await
                .unwrap_or_else(|e| panic!("call {calls} on the old certificate failed: {e:?}"));
            calls += 1;
            // Tell the test a call went through; never wait for it to listen.
            let _ = done_tx.try_send(());
            if stop_rx.try_recv().is_ok() {
                return (on_old, calls);
            }
        }
    });
    done_rx.recv().await.unwrap();
    let days = expiry_days(&gw).await.unwrap();
    assert!((364.0..=365.0).contains(&days), "{days}");

    // The CA signs the renewal (two years); the agency deploys it beside the old one.
    let new = gw.renewal("ministry", &ClientOptions::valid_for_days(730));
    assert_ne!(new.serial, old.serial);
    let mut on_new = IdentityGatewayClient::new(gw.channel_with(&new).await.unwrap());
    for _ in 0..3 {
        lookup(&mut on_new)
            .await
            .expect("the new certificate works");
    }
    // Calls on the old certificate went on meanwhile, and still do.
    done_rx.recv().await.unwrap();
    done_rx.recv().await.unwrap();
    // The gauge shows the soonest expiry of the two: the old one is the one to watch.
    let days = expiry_days(&gw).await.unwrap();
    assert!((364.0..=365.0).contains(&days), "{days}");
    stop_tx.send(()).unwrap();
    let (mut on_old, calls) = caller.await.unwrap();
    assert!(calls >= 3, "{calls}");

    // The operator revokes the old certificate by serial and reloads.
    gw.revoke_serials(std::slice::from_ref(&old.serial))
        .expect("reload");
    // On its open connection the old certificate is refused from its next call, as revoked.
    let e = lookup(&mut on_old).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(e.message(), "client certificate has been revoked");
    // A new connection with it does not get through the TLS handshake: TLS 1.3 checks the
    // client certificate after the client has sent its Finished, so the refusal reaches the
    // client as the server's alert `certificate_revoked` on the first call (or already in
    // connect, had the HTTP/2 preface been awaited there).
    let refusal = match gw.channel_with(&old).await {
        Err(e) => format!("{e:?}"),
        Ok(ch) => {
            let e = lookup(&mut IdentityGatewayClient::new(ch))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::Unknown, "{e:?}");
            format!("{e:?}")
        }
    };
    assert!(
        refusal.contains("received fatal alert: CertificateRevoked"),
        "{refusal}"
    );
    // The new one goes on, on its open connection and on a new one.
    lookup(&mut on_new)
        .await
        .expect("the new certificate works");
    let mut again = IdentityGatewayClient::new(gw.channel_with(&new).await.unwrap());
    lookup(&mut again).await.expect("the new certificate works");
    // The gauge moves to the new certificate.
    let days = expiry_days(&gw).await.unwrap();
    assert!((729.0..=730.0).contains(&days), "{days}");

    // The audit log tells the two apart: every call of each certificate, and the refusal of
    // the old one on its open connection (the refused handshake never reached the gateway).
    let (old_fp, new_fp) = (fingerprint(&old.cert_pem), fingerprint(&new.cert_pem));
    let records = common::audit_records(&gw.audit_dir());
    let of = |fp: &str| {
        records
            .iter()
            .filter(|r| r["cert_sha256"] == fp)
            .map(|r| {
                assert_eq!(r["client"], "ministry");
                r["outcome"].as_str().unwrap().to_owned()
            })
            .collect::<Vec<_>>()
    };
    let mut want_old = vec!["ok".to_owned(); 1 + calls as usize];
    want_old.push("denied".into());
    assert_eq!(of(&old_fp), want_old);
    assert_eq!(of(&new_fp), vec!["ok".to_owned(); 5]);
    // And `audit query --cert` finds them.
    let out = Command::new(env!("CARGO_BIN_EXE_popgate"))
        .args(["audit", "query", "--json", "--cert", &old_fp, "--dir"])
        .arg(gw.audit_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        want_old.len()
    );
}
