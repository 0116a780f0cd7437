//! The certificate matrix (issue "A hostile world"): each bad client certificate is refused at
//! the right place — in the TLS handshake, or with PERMISSION_DENIED once it reaches the
//! application, where the refusal is audited — and a good client is unaffected.

mod common;

use std::sync::Arc;

use common::{Options, TestGateway, citizen, lookup_req, put};
use popgate::client::{ClientTls, connect};
use popgate::pb::identity_gateway_client::IdentityGatewayClient;
use popgate::pki::{ClientOptions, DevCa};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use time::{Duration, OffsetDateTime};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const ID: &str = "001087000001";

/// One Lookup over a fresh connection with `tls`; the error code, or OK.
async fn call_with(gw: &TestGateway, tls: &ClientTls) -> Code {
    match connect(&gw.addr.to_string(), "localhost", tls).await {
        Err(_) => Code::Unavailable,
        Ok(ch) => call_on(ch).await,
    }
}

async fn call_on(ch: Channel) -> Code {
    // As the "utility" client would call (the other CNs reach no further than the handshake
    // or the client check).
    match IdentityGatewayClient::new(ch)
        .lookup(lookup_req(ID, &["full_name"], "electricity-contract"))
        .await
    {
        Ok(_) => Code::Ok,
        Err(e) => e.code(),
    }
}

fn tls(ca: &DevCa, cn: &str, opts: &ClientOptions) -> ClientTls {
    let pair = ca.client_cert(cn, opts).unwrap();
    ClientTls {
        ca_pem: ca.cert_pem().to_owned(),
        cert_pem: pair.cert_pem,
        key_pem: pair.key_pem,
    }
}

/// A channel whose TLS client is configured by hand: no client certificate, or TLS 1.2 only.
async fn raw_channel(
    gw: &TestGateway,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut gw.ca.cert_pem().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client_auth {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let config = Arc::new(config);
    let addr = gw.addr;
    let connector = tower::service_fn(move |_uri: http::Uri| {
        let config = config.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = ServerName::try_from("localhost").unwrap();
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    Endpoint::from_static("http://localhost")
        .connect_with_connector(connector)
        .await
}

fn is_handshake_refusal(code: Code) -> bool {
    // The call never reaches a handler: tonic reports the broken connection.
    matches!(
        code,
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
    )
}

#[tokio::test]
async fn each_bad_certificate_is_refused_at_the_right_place() {
    let gw = TestGateway::start_with(Options {
        revoked: vec!["ministry".into()],
        ..Default::default()
    })
    .await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    let now = OffsetDateTime::now_utc();
    let other_ca = DevCa::generate_with_cn("popgate dev CA").unwrap();

    let cases: Vec<(&str, ClientTls)> = vec![
        (
            "expired",
            tls(
                &gw.ca,
                "utility",
                &ClientOptions {
                    not_before: now - Duration::days(30),
                    not_after: now - Duration::days(1),
                    server_only_eku: false,
                },
            ),
        ),
        (
            "not yet valid",
            tls(
                &gw.ca,
                "utility",
                &ClientOptions {
                    not_before: now + Duration::days(1),
                    not_after: now + Duration::days(30),
                    server_only_eku: false,
                },
            ),
        ),
        (
            "from another CA with the same name",
            ClientTls {
                ca_pem: gw.ca.cert_pem().to_owned(),
                ..tls(&other_ca, "utility", &ClientOptions::default())
            },
        ),
        ("revoked by the CRL", gw.tls_for("ministry")),
        (
            "a server-only certificate used as a client",
            tls(
                &gw.ca,
                "utility",
                &ClientOptions {
                    server_only_eku: true,
                    ..ClientOptions::default()
                },
            ),
        ),
    ];
    for (what, client_tls) in &cases {
        let code = call_with(&gw, client_tls).await;
        assert!(
            is_handshake_refusal(code),
            "{what}: got {code:?}, want a handshake refusal"
        );
    }

    // No client certificate at all.
    let code = match raw_channel(&gw, &[&rustls::version::TLS13], None).await {
        Err(_) => Code::Unavailable,
        Ok(ch) => call_on(ch).await,
    };
    assert!(
        is_handshake_refusal(code),
        "no client certificate: {code:?}"
    );

    // TLS 1.2 only, with an otherwise good certificate.
    let good = gw.cert("utility");
    let chain = rustls_pemfile::certs(&mut good.cert_pem.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let key = rustls_pemfile::private_key(&mut good.key_pem.as_bytes())
        .unwrap()
        .unwrap();
    let code = match raw_channel(&gw, &[&rustls::version::TLS12], Some((chain, key))).await {
        Err(_) => Code::Unavailable,
        Ok(ch) => call_on(ch).await,
    };
    assert!(is_handshake_refusal(code), "TLS 1.2 only: {code:?}");

    // A valid certificate whose CN is no configured client reaches the application.
    let code = call_with(&gw, &tls(&gw.ca, "mallory", &ClientOptions::default())).await;
    assert_eq!(code, Code::PermissionDenied);

    // Through all that, a good client is served.
    assert_eq!(call_with(&gw, &gw.tls_for("utility")).await, Code::Ok);

    // The refusal that reached the application is in the audit log.
    let (dir, _) = gw.stop().await;
    let mut found = false;
    for entry in std::fs::read_dir(dir.path().join("data/audit")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl")
            && path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("audit-")
        {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                if v["client"] == "mallory" {
                    assert_eq!(v["outcome"], "denied");
                    assert_eq!(v["method"], "Lookup");
                    found = true;
                }
            }
        }
    }
    assert!(found, "the unknown client's refusal was not audited");
}

#[tokio::test]
async fn garbage_on_the_tls_port_affects_no_other_caller() {
    use tokio::io::AsyncWriteExt;
    let gw = TestGateway::start().await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    // Garbage bytes, and a half-open connection that never finishes its handshake.
    let mut junk = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n\x00\xff\x16\x03\x01garbage")
        .await
        .unwrap();
    let _half_open = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    assert_eq!(call_with(&gw, &gw.tls_for("utility")).await, Code::Ok);
}
