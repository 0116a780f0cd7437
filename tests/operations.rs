//! Operations: metrics, reload without restart, revocation on open connections,
//! check-config, clean shutdown, and no personal data in logs.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{CLIENTS, TestGateway, citizen, lookup_req, put};
use tonic::Code;

const ID: &str = "001087000001";

#[tokio::test]
async fn metrics_show_the_calls_made() {
    let gw = TestGateway::start().await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    let mut c = gw.agency("ministry").await;
    for _ in 0..3 {
        c.lookup(lookup_req(ID, &["full_name"], "health-insurance"))
            .await
            .unwrap();
    }
    let _ = c
        .lookup(lookup_req(ID, &["religion"], "health-insurance"))
        .await;
    let text = gw.scrape().await;
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    assert_eq!(
        line(r#"popgate_requests_total{client="ministry",method="Lookup",outcome="ok"}"#),
        3.0
    );
    assert_eq!(
        line(r#"popgate_requests_total{client="ministry",method="Lookup",outcome="denied"}"#),
        1.0
    );
    assert_eq!(line(r#"popgate_reused_total{client="ministry"}"#), 3.0);
    assert_eq!(line("popgate_store_records"), 1.0);
    assert!(line(r#"popgate_certificate_expiry_days{certificate="server"}"#) > 300.0);
    assert!(text.contains("popgate_request_duration_seconds_bucket"));
    assert!(text.contains("popgate_build_info{version="));
    // Every audited call was synced (sync durability): the fsync histogram saw them.
    assert!(line("popgate_audit_fsync_seconds_count") >= 1.0);
    assert!(line("popgate_audit_last_seq") >= 5.0);
    assert_eq!(line("popgate_audit_healthy"), 1.0);
    assert!(!text.contains("Nguyễn"), "personal data in metrics");
}

#[tokio::test]
async fn reload_adds_and_removes_clients_while_connections_stay_open() {
    let gw = TestGateway::start().await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    let mut ministry = gw.agency("ministry").await;
    let mut newcomer = gw.agency("newcomer").await;
    let e = newcomer
        .lookup(lookup_req(ID, &["full_name"], "p"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Add "newcomer", drop "ministry".
    let without_ministry: String = CLIENTS
        .split("[[clients]]")
        .filter(|c| !c.contains("id = \"ministry\""))
        .collect::<Vec<_>>()
        .join("[[clients]]");
    let added = format!(
        "{without_ministry}\n[[clients]]\nid = \"newcomer\"\nkind = \"ministry\"\nrole = \"agency\"\nread = [\"full_name\"]\npurposes = [\"p\"]\nrate_per_sec = 100\n"
    );
    gw.reload_clients(&added).expect("reload");

    // Same connections as before the reload.
    newcomer
        .lookup(lookup_req(ID, &["full_name"], "p"))
        .await
        .expect("newcomer is served after reload");
    let e = ministry
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("unknown client"), "{}", e.message());

    // A bad config is refused and the running one stays.
    let err = gw
        .reload_clients(
            "[[clients]]\nid = \"x\"\nkind = \"ministry\"\nrole = \"agency\"\npurposes = [\"p\"]\n",
        )
        .unwrap_err();
    assert!(err.to_string().contains("rate_per_sec"), "{err}");
    newcomer
        .lookup(lookup_req(ID, &["full_name"], "p"))
        .await
        .expect("the old config stays after a refused reload");
}

#[tokio::test]
async fn a_client_revoked_on_reload_is_refused_on_its_open_connection() {
    let gw = TestGateway::start().await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    let mut c = gw.agency("ministry").await;
    c.lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap();
    gw.revoke(&["ministry"]).expect("reload");
    let e = c
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("revoked"), "{}", e.message());
    // Others go on.
    gw.agency("utility")
        .await
        .lookup(lookup_req(ID, &["full_name"], "electricity-contract"))
        .await
        .unwrap();
}

fn popgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_popgate"))
}

#[test]
fn check_config_accepts_a_good_config_and_names_the_key_of_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let ok = popgate()
        .args(["certs", "init", "--dir"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let base = format!(
        "[server]\nlisten = \"127.0.0.1:7443\"\n[tls]\ncert = \"certs/server.pem\"\nkey = \"certs/server.key\"\nclient_ca = \"certs/ca.pem\"\ncrl = \"certs/ca.crl\"\n[store]\npath = \"data/population\"\n[audit]\ndir = \"data/audit\"\nsigning_key = \"certs/audit.key\"\n{CLIENTS}"
    );
    let check = |text: &str| {
        let path = dir.path().join("popgate.toml");
        std::fs::write(&path, text).unwrap();
        popgate()
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = check(&base);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cases = [
        (
            base.replace("[store]", "[store]\ncolour = \"blue\""),
            "colour",
        ),
        (
            base.replace("[store]", "[store]\ncache_mib = 4"),
            "store.cache_mib",
        ),
        (
            base.replace(
                "rate_per_sec = 100000\nburst = 100000\n\n[[clients]]\nid = \"ministry\"",
                "\n[[clients]]\nid = \"ministry\"",
            ),
            "rate_per_sec",
        ),
        (
            base.replace("id = \"utility\"", "id = \"telecom\""),
            "duplicate",
        ),
        (
            base.replace("read = [\"full_name\"]", "read = [\"shoe_size\"]"),
            "shoe_size",
        ),
        (base.replace("certs/ca.crl", "certs/missing.crl"), "tls.crl"),
        (
            base.replace("key = \"certs/server.key\"", "key = \"certs/audit.key\""),
            "tls.key",
        ),
        (
            base.replace(
                "client_ca = \"certs/ca.pem\"",
                "client_ca = \"certs/ca.crl\"",
            ),
            "tls.client_ca",
        ),
        (
            base.replace(
                "signing_key = \"certs/audit.key\"",
                "signing_key = \"certs/server.pem\"",
            ),
            "server.pem",
        ),
        (
            base.replace(
                "[store]",
                "[console]\nlisten = \"127.0.0.1:9443\"\nport = 1\n[store]",
            ),
            "port",
        ),
        (
            base.replace("[store]", "[console]\nlisten = \"127.0.0.1:7443\"\n[store]"),
            "console.listen",
        ),
        (
            base.replace(
                "[store]",
                "[console]\nlisten = \"127.0.0.1:9443\"\npubkeys = [\"certs/ca.pem\"]\n[store]",
            ),
            "console.pubkeys[0]",
        ),
    ];
    let console = base.replace("[store]", "[console]\nlisten = \"127.0.0.1:9443\"\n[store]");
    let out = check(&console);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("; console 127.0.0.1:9443)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for (text, key) in cases {
        let out = check(&text);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {err}");
        assert!(err.contains(key), "{key}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

/// Starts `popgate serve --config` with `RUST_LOG`; returns the child and its address.
fn spawn_server(
    config: &std::path::Path,
    log: &str,
) -> (common::Reaped, String, std::sync::mpsc::Receiver<String>) {
    let mut child = common::Reaped(
        popgate()
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", log)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server log");
        if let Some(rest) = line
            .split("listen=")
            .nth(1)
            .filter(|_| line.contains("popgate serving"))
        {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    (child, addr, rx)
}

fn write_config(dir: &std::path::Path) -> std::path::PathBuf {
    let certs = dir.join("certs");
    let out = popgate()
        .args(["certs", "init", "--dir"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(out.status.success());
    for id in ["ministry", "registry"] {
        let out = popgate()
            .args(["certs", "issue", "--dir"])
            .arg(&certs)
            .args(["--id", id])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let config = dir.join("popgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = \"certs/server.pem\"\nkey = \"certs/server.key\"\nclient_ca = \"certs/ca.pem\"\ncrl = \"certs/ca.crl\"\n[store]\npath = \"data/population\"\n[audit]\ndir = \"data/audit\"\nsigning_key = \"certs/audit.key\"\n{CLIENTS}"
        ),
    )
    .unwrap();
    config
}

fn tls(dir: &std::path::Path, id: &str) -> popgate::client::ClientTls {
    let c = dir.join("certs");
    popgate::client::ClientTls::from_files(
        &c.join("ca.pem"),
        &c.join(format!("{id}.pem")),
        &c.join(format!("{id}.key")),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_finishes_admitted_calls_and_leaves_a_verifying_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (child, addr, _log) = spawn_server(&config, "info");
    let reg_ch = popgate::client::connect(&addr, "localhost", &tls(dir.path(), "registry"))
        .await
        .unwrap();
    let mut reg = popgate::pb::registry_admin_client::RegistryAdminClient::new(reg_ch);
    reg.put_citizen(popgate::pb::PutCitizenRequest {
        citizen: Some(citizen(ID, "Nguyễn Văn An")),
        expected_version: 0,
    })
    .await
    .unwrap();
    let ch = popgate::client::connect(&addr, "localhost", &tls(dir.path(), "ministry"))
        .await
        .unwrap();
    let served = std::sync::Arc::new(tokio::sync::watch::Sender::new(0u32));
    let mut flowing = served.subscribe();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = popgate::pb::identity_gateway_client::IdentityGatewayClient::new(ch.clone());
        let served = served.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u32;
            loop {
                match c
                    .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
                    .await
                {
                    Ok(_) => {
                        ok += 1;
                        served.send_modify(|n| *n += 1);
                    }
                    // After shutdown starts, new calls are refused or the connection closes
                    // (how the client reports that is the transport's business).
                    Err(e) => return (ok, e.message().to_owned()),
                }
            }
        }));
    }
    // Signal once the load is really flowing: 50 calls answered.
    flowing
        .wait_for(|n| *n >= 50)
        .await
        .expect("the load never got going");
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let mut total = 0;
    for t in tasks {
        let (ok, message) = t.await.unwrap();
        total += ok;
        // The gateway's own internal failures say so ("internal error: …").
        assert!(
            !message.starts_with("internal error"),
            "a call failed inside the gateway: {message}"
        );
    }
    assert!(total > 0);
    let status = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success(), "exit status {status}");
    let verify = popgate()
        .args(["audit", "verify", "--dir"])
        .arg(dir.path().join("data/audit"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_personal_data_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut child, addr, log) = spawn_server(&config, "trace");
    let name = "Hoàng Thị Phương";
    let mut record = citizen(ID, name);
    record.permanent_address = "Số 7, Ngõ Huế, Quận Hai Bà Trưng, Hà Nội".into();
    let reg_ch = popgate::client::connect(&addr, "localhost", &tls(dir.path(), "registry"))
        .await
        .unwrap();
    popgate::pb::registry_admin_client::RegistryAdminClient::new(reg_ch)
        .put_citizen(popgate::pb::PutCitizenRequest {
            citizen: Some(record.clone()),
            expected_version: 0,
        })
        .await
        .unwrap();
    let ch = popgate::client::connect(&addr, "localhost", &tls(dir.path(), "ministry"))
        .await
        .unwrap();
    let mut c = popgate::pb::identity_gateway_client::IdentityGatewayClient::new(ch);
    c.lookup(lookup_req(ID, &[], "health-insurance"))
        .await
        .unwrap();
    let _ = c
        .verify(popgate::pb::VerifyRequest {
            citizen_id: ID.into(),
            claims: Some(popgate::pb::Claims {
                full_name: Some(name.into()),
                date_of_birth: Some(record.date_of_birth.clone()),
                ..Default::default()
            }),
            purpose: "health-insurance".into(),
            request_id: String::new(),
            mode: 0,
        })
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let mut text = String::new();
    while let Ok(line) = log.recv_timeout(Duration::from_secs(2)) {
        text.push_str(&line);
        text.push('\n');
    }
    assert!(
        text.lines().count() > 10,
        "the trace log was captured:\n{text}"
    );
    for secret in [name, "Hoàng", "Ngõ Huế", record.date_of_birth.as_str()] {
        assert!(!text.contains(secret), "{secret:?} found in the logs");
    }
    let mut audit = String::new();
    for entry in std::fs::read_dir(dir.path().join("data/audit")).unwrap() {
        let mut f = std::fs::File::open(entry.unwrap().path()).unwrap();
        f.read_to_string(&mut audit).unwrap();
    }
    for secret in [name, "Ngõ Huế", record.date_of_birth.as_str()] {
        assert!(!audit.contains(secret), "{secret:?} found in the audit log");
    }
}

#[tokio::test]
async fn a_stream_opened_before_a_revocation_is_refused_from_its_next_item() {
    let gw = TestGateway::start().await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut answers = gw
        .agency("ministry")
        .await
        .lookup_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap();
    let first = answers.message().await.unwrap().unwrap();
    assert_eq!(first.citizen.unwrap().full_name, "Nguyễn Văn An");
    gw.revoke(&["ministry"]).expect("reload");
    tx.send(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap();
    let e = answers.message().await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("revoked"), "{}", e.message());
}
