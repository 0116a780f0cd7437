//! `popgate certs …` end to end: the built binary in a temporary directory, checked with
//! x509-parser and, where it is installed, with `openssl` as an independent verifier.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use popgate::pki::Serial;

fn popgate<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_popgate"))
        .args(args)
        .output()
        .expect("run popgate")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "expected success, got {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// Exit 2 with exactly one line on stderr that contains `needle`.
#[track_caller]
fn assert_refused(out: &Output, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "stderr must be one line: {err}");
    assert!(
        err.contains(needle),
        "stderr {err:?} should mention {needle:?}"
    );
}

fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("openssl is not on PATH: skipping the openssl cross-checks");
    }
    found
}

fn openssl<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl")
}

fn der(pem: &str) -> Vec<u8> {
    match rustls_pemfile::read_one_from_slice(pem.as_bytes()) {
        Ok(Some((rustls_pemfile::Item::X509Certificate(d), _))) => d.to_vec(),
        Ok(Some((rustls_pemfile::Item::Crl(d), _))) => d.to_vec(),
        other => panic!("unexpected PEM: {other:?}"),
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cert_cn(pem: &str) -> String {
    let der = der(pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn crl_serials(dir: &Path) -> Vec<Serial> {
    let der = der(&read(&dir.join("ca.crl")));
    let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
    crl.iter_revoked_certificates()
        .map(|r| Serial::from_bytes(r.raw_serial()))
        .collect()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// An ECDSA P-256 CSR made in-process with rcgen, so the CSR tests do not depend on openssl.
fn rcgen_csr(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

#[test]
fn init_issue_revoke_list() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let d = dir.to_str().unwrap();

    let out = popgate(["certs", "init", "--dir", d]);
    assert_ok(&out);
    let said = stdout(&out);
    for name in [
        "ca.pem",
        "ca.key",
        "server.pem",
        "server.key",
        "ca.crl",
        "audit.key",
        "audit.pub",
        "index.json",
    ] {
        assert!(dir.join(name).is_file(), "{name} missing");
        assert!(
            said.contains(&dir.join(name).display().to_string()),
            "{name} not reported: {said}"
        );
    }
    assert!(said.contains("next:"), "{said}");
    #[cfg(unix)]
    for key in ["ca.key", "server.key", "audit.key"] {
        assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
    }
    let audit_pub = read(&dir.join("audit.pub"));
    assert_eq!(audit_pub.len(), 65);
    assert!(crl_serials(&dir).is_empty());

    let ca_before = read(&dir.join("ca.key"));
    assert_refused(&popgate(["certs", "init", "--dir", d]), "refusing");
    assert_eq!(read(&dir.join("ca.key")), ca_before);

    let out = popgate([
        "certs", "issue", "--dir", d, "--id", "viettel", "--days", "30",
    ]);
    assert_ok(&out);
    assert!(stdout(&out).contains("viettel.pem"));
    assert!(stdout(&out).contains("next:"));
    let viettel = read(&dir.join("viettel.pem"));
    assert_eq!(cert_cn(&viettel), "viettel");
    #[cfg(unix)]
    assert_eq!(mode(&dir.join("viettel.key")), 0o600);
    let serial = Serial::of_cert_pem(&viettel).unwrap();
    assert!(stdout(&out).contains(&serial.to_string()));

    assert_refused(
        &popgate(["certs", "issue", "--dir", d, "--id", "viettel"]),
        "popgate certs revoke",
    );
    assert_refused(
        &popgate(["certs", "issue", "--dir", d, "--id", "../../etc/passwd"]),
        "invalid client id",
    );
    assert!(!tmp.path().join("etc").exists());
    assert_refused(
        &popgate(["certs", "issue", "--dir", d, "--id", "ca"]),
        "reserved",
    );
    assert_refused(
        &popgate(["certs", "issue", "--dir", d, "--id", "vnpt", "--days", "0"]),
        "--days 0",
    );
    assert_ok(&popgate(["certs", "issue", "--dir", d, "--id", "vnpt"]));

    let out = popgate(["certs", "revoke", "--dir", d, "--id", "viettel"]);
    assert_ok(&out);
    assert!(stdout(&out).contains(&serial.to_string()));
    assert!(stdout(&out).contains("ca.crl"));
    assert_eq!(crl_serials(&dir), vec![serial.clone()]);
    assert_refused(
        &popgate(["certs", "revoke", "--dir", d, "--id", "mobifone"]),
        "no certificate for client \"mobifone\"",
    );

    let out = popgate(["certs", "list", "--dir", d, "--json"]);
    assert_ok(&out);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], "viettel");
    assert_eq!(rows[0]["serial"], serial.to_string());
    assert_eq!(rows[0]["state"], "revoked");
    assert!(rows[0]["revoked_at"].is_string());
    assert_eq!(rows[1]["id"], "vnpt");
    assert_eq!(rows[1]["state"], "valid");
    assert!(rows[1]["revoked_at"].is_null());
    assert!(rows[1]["not_after"].as_str().unwrap().ends_with('Z'));

    let out = popgate(["certs", "list", "--dir", d]);
    assert_ok(&out);
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("viettel") && l.contains("revoked")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("vnpt") && l.contains("valid")),
        "{table}"
    );

    if openssl_available() {
        let ca = dir.join("ca.pem");
        for cert in ["server.pem", "vnpt.pem", "viettel.pem"] {
            let out = openssl([
                OsStr::new("verify"),
                OsStr::new("-CAfile"),
                ca.as_os_str(),
                dir.join(cert).as_os_str(),
            ]);
            assert_ok(&out);
        }
        // The CRL is one openssl understands, and it revokes exactly viettel.
        let with_crl = |cert: &str| {
            openssl([
                OsStr::new("verify"),
                OsStr::new("-crl_check"),
                OsStr::new("-CRLfile"),
                dir.join("ca.crl").as_os_str(),
                OsStr::new("-CAfile"),
                ca.as_os_str(),
                dir.join(cert).as_os_str(),
            ])
        };
        let out = with_crl("viettel.pem");
        assert!(!out.status.success());
        assert!(stdout(&out).contains("revoked") || stderr(&out).contains("revoked"));
        assert_ok(&with_crl("vnpt.pem"));
        let out = openssl([
            OsStr::new("verify"),
            OsStr::new("-purpose"),
            OsStr::new("sslclient"),
            OsStr::new("-CAfile"),
            ca.as_os_str(),
            dir.join("vnpt.pem").as_os_str(),
        ]);
        assert_ok(&out);
        let out = openssl([
            OsStr::new("verify"),
            OsStr::new("-purpose"),
            OsStr::new("sslserver"),
            OsStr::new("-CAfile"),
            ca.as_os_str(),
            dir.join("server.pem").as_os_str(),
        ]);
        assert_ok(&out);
    }
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    assert_eq!(
        popgate(["certs", "issue", "--id", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(popgate(["certs", "frobnicate"]).status.code(), Some(2));
    assert_eq!(
        popgate(["certs", "issue", "--dir", d, "--id", "x", "--days", "-1"])
            .status
            .code(),
        Some(2)
    );
    assert_refused(
        &popgate(["certs", "issue", "--dir", d, "--id", "viettel"]),
        "popgate certs init --dir",
    );
    assert_refused(
        &popgate(["certs", "list", "--dir", d]),
        "popgate certs init",
    );
    assert_refused(
        &popgate([
            "certs",
            "sign",
            "--dir",
            d,
            "--csr",
            "/nonexistent.csr",
            "--id",
            "moh",
        ]),
        "cannot read the CSR",
    );
}

#[test]
fn sign_rcgen_csrs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    assert_ok(&popgate(["certs", "init", "--dir", d]));

    let good = dir.join("moh.csr");
    fs::write(&good, rcgen_csr("moh")).unwrap();
    let out = popgate([
        OsStr::new("certs"),
        OsStr::new("sign"),
        OsStr::new("--dir"),
        dir.as_os_str(),
        OsStr::new("--csr"),
        good.as_os_str(),
        OsStr::new("--id"),
        OsStr::new("moh"),
    ]);
    assert_ok(&out);
    assert!(stdout(&out).contains("moh.pem"));
    let cert = read(&dir.join("moh.pem"));
    assert_eq!(cert_cn(&cert), "moh");
    assert!(!dir.join("moh.key").exists(), "sign must not invent a key");
    let ca_der = der(&read(&dir.join("ca.pem")));
    let cert_der = der(&cert);
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    let (_, leaf) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    leaf.verify_signature(Some(ca.public_key())).unwrap();

    let sign = |csr: &str, id: &str| {
        let path = dir.join(format!("{id}-test.csr"));
        fs::write(&path, csr).unwrap();
        popgate([
            OsStr::new("certs"),
            OsStr::new("sign"),
            OsStr::new("--dir"),
            dir.as_os_str(),
            OsStr::new("--csr"),
            path.as_os_str(),
            OsStr::new("--id"),
            OsStr::new(id),
        ])
    };
    assert_refused(
        &sign(&rcgen_csr("moh"), "mof-tax"),
        "CN \"moh\" but --id is \"mof-tax\"",
    );

    // Flip the tenth base64 digit from the end of the PEM body: that lands in the signature
    // (the last bytes of the DER), whatever the line lengths.
    let pem = rcgen_csr("hanoi");
    let body_end = pem.find("\n-----END").unwrap();
    let at = (0..body_end)
        .rev()
        .filter(|&i| {
            pem.as_bytes()[i].is_ascii_alphanumeric() || b"+/".contains(&pem.as_bytes()[i])
        })
        .nth(9)
        .unwrap();
    let mut bytes = pem.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    assert_refused(&sign(&tampered, "hanoi"), "signature does not verify");
    assert!(!dir.join("hanoi.pem").exists());

    assert_refused(&sign("not a csr", "evn"), "not a PKCS#10 request");
}

#[test]
fn sign_openssl_csrs() {
    if !openssl_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    assert_ok(&popgate(["certs", "init", "--dir", d]));

    let make_csr = |name: &str, newkey: &[&str], subj: &str| {
        let csr = dir.join(format!("{name}.csr"));
        let key = dir.join(format!("{name}.agency-key"));
        let mut args: Vec<&OsStr> = vec![OsStr::new("req"), OsStr::new("-new")];
        args.extend(newkey.iter().map(OsStr::new));
        args.extend([
            OsStr::new("-nodes"),
            OsStr::new("-keyout"),
            key.as_os_str(),
            OsStr::new("-out"),
            csr.as_os_str(),
            OsStr::new("-subj"),
            OsStr::new(subj),
        ]);
        assert_ok(&openssl(args));
        csr
    };
    let sign = |csr: &Path, id: &str| {
        popgate([
            OsStr::new("certs"),
            OsStr::new("sign"),
            OsStr::new("--dir"),
            dir.as_os_str(),
            OsStr::new("--csr"),
            csr.as_os_str(),
            OsStr::new("--id"),
            OsStr::new(id),
            OsStr::new("--days"),
            OsStr::new("90"),
        ])
    };
    let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

    let csr = make_csr("evn", &p256, "/CN=evn");
    assert_ok(&sign(&csr, "evn"));
    let cert = dir.join("evn.pem");
    let out = openssl([
        OsStr::new("verify"),
        OsStr::new("-purpose"),
        OsStr::new("sslclient"),
        OsStr::new("-CAfile"),
        dir.join("ca.pem").as_os_str(),
        cert.as_os_str(),
    ]);
    assert_ok(&out);
    assert!(stdout(&out).contains(": OK"));
    assert_eq!(cert_cn(&read(&cert)), "evn");
    // The certificate carries the agency's key: it matches the key openssl kept.
    let pubkey = |args: &[&OsStr]| stdout(&openssl(args));
    assert_eq!(
        pubkey(&[
            OsStr::new("x509"),
            OsStr::new("-noout"),
            OsStr::new("-pubkey"),
            OsStr::new("-in"),
            cert.as_os_str()
        ]),
        pubkey(&[
            OsStr::new("pkey"),
            OsStr::new("-pubout"),
            OsStr::new("-in"),
            dir.join("evn.agency-key").as_os_str()
        ]),
    );

    let csr = make_csr("rsa2048", &["-newkey", "rsa:2048"], "/CN=hanoi");
    assert_ok(&sign(&csr, "hanoi"));

    let csr = make_csr("rsa1024", &["-newkey", "rsa:1024"], "/CN=vnpt");
    assert_refused(&sign(&csr, "vnpt"), "1024 bits");
    assert!(!dir.join("vnpt.pem").exists());

    let csr = make_csr("other-cn", &p256, "/CN=viettel");
    assert_refused(&sign(&csr, "mobifone"), "must be equal");
    assert!(!dir.join("mobifone.pem").exists());

    let csr = make_csr("two-cn", &p256, "/CN=moh/CN=viettel");
    assert_refused(&sign(&csr, "moh"), "Common Names");

    let csr = make_csr(
        "p384",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        "/CN=moh",
    );
    assert_refused(&sign(&csr, "moh"), "P-384");

    let out = popgate(["certs", "list", "--dir", d, "--json"]);
    assert_ok(&out);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let ids: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["evn", "hanoi"]);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["source"] == "csr")
    );
}
