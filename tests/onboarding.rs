//! Agency onboarding: an agency makes its key and CSR with openssl, the operator signs it
//! with `popgate certs sign`, and the agency calls the real gateway with the result — its
//! private key never having left it.

mod common;

use std::process::Command;

use common::{Options, TestGateway, citizen, lookup_req, put};
use popgate::client::ClientTls;
use popgate::pki::DevCa;

fn openssl_available() -> bool {
    Command::new("openssl").arg("version").output().is_ok()
}

#[tokio::test]
async fn a_csr_made_with_openssl_is_signed_and_its_certificate_is_accepted() {
    assert!(openssl_available(), "openssl is needed (CI installs it)");
    let work = tempfile::tempdir().unwrap();
    let certs = work.path().join("certs");
    let agency = work.path().join("agency");
    std::fs::create_dir_all(&agency).unwrap();
    let popgate = env!("CARGO_BIN_EXE_popgate");
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{:?}: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new(popgate)
        .args(["certs", "init", "--dir"])
        .arg(&certs));
    // On the agency's side.
    run(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(agency.join("agency.key"))
        .arg("-out")
        .arg(agency.join("agency.csr"))
        .args(["-subj", "/CN=utility"]));
    // On the operator's side: only the CSR crosses over.
    run(Command::new(popgate)
        .args(["certs", "sign", "--dir"])
        .arg(&certs)
        .arg("--csr")
        .arg(agency.join("agency.csr"))
        .args(["--id", "utility"]));

    // The gateway, with that CA.
    let ca = DevCa::load(&certs).unwrap();
    let gw =
        TestGateway::start_in(tempfile::tempdir().unwrap(), Some(ca), Options::default()).await;
    put(&gw, citizen("001087000001", "Nguyễn Văn An")).await;
    let tls = ClientTls {
        ca_pem: std::fs::read_to_string(certs.join("ca.pem")).unwrap(),
        cert_pem: std::fs::read_to_string(certs.join("utility.pem")).unwrap(),
        key_pem: std::fs::read_to_string(agency.join("agency.key")).unwrap(),
    };
    let ch = popgate::client::connect(&gw.addr.to_string(), "localhost", &tls)
        .await
        .unwrap();
    let got = popgate::pb::identity_gateway_client::IdentityGatewayClient::new(ch)
        .lookup(lookup_req(
            "001087000001",
            &["full_name"],
            "electricity-contract",
        ))
        .await
        .expect("the signed certificate is accepted")
        .into_inner();
    assert_eq!(got.citizen.unwrap().full_name, "Nguyễn Văn An");

    // A CSR whose CN is not the id is refused with a clear message.
    run(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(agency.join("other.key"))
        .arg("-out")
        .arg(agency.join("other.csr"))
        .args(["-subj", "/CN=someone-else"]));
    let out = Command::new(popgate)
        .args(["certs", "sign", "--dir"])
        .arg(&certs)
        .arg("--csr")
        .arg(agency.join("other.csr"))
        .args(["--id", "evn"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("someone-else") && err.contains("evn"), "{err}");
}
