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

/// A CA directory with `certs init` done.
fn ca_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    assert_ok(&popgate([
        OsStr::new("certs"),
        OsStr::new("init"),
        OsStr::new("--dir"),
        tmp.path().as_os_str(),
    ]));
    tmp
}

/// Issues a certificate for `id` and returns its serial, as `certs issue` printed it.
fn issue(d: &str, id: &str) -> (Serial, String) {
    let out = popgate(["certs", "issue", "--dir", d, "--id", id]);
    assert_ok(&out);
    let serial = Serial::of_cert_pem(&read(&Path::new(d).join(format!("{id}.pem")))).unwrap();
    assert!(stdout(&out).contains(&serial.to_string()));
    (serial, stdout(&out))
}

/// `certs list --json`, as (id, serial, state) rows in its order.
fn list_json(args: &[&str]) -> Vec<(String, String, String)> {
    let out = popgate(["certs", "list", "--json"].iter().chain(args));
    assert_ok(&out);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            for key in [
                "id",
                "serial",
                "not_before",
                "not_after",
                "revoked_at",
                "state",
                "source",
            ] {
                assert!(r.get(key).is_some(), "{key} missing from {r}");
            }
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (s("id"), s("serial"), s("state"))
        })
        .collect()
}

#[test]
fn a_renewal_overlaps_and_a_third_valid_certificate_is_refused() {
    let tmp = ca_dir();
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let (old, said) = issue(d, "viettel");
    assert!(!said.contains("keeps working"), "{said}");
    let (new, said) = issue(d, "viettel");
    assert_ne!(old, new);
    // The renewal says the old one keeps working, and how to retire it.
    assert!(said.contains("keeps working"), "{said}");
    assert!(
        said.contains(&format!(
            "popgate certs revoke --dir {d} --id viettel --serial {old}"
        )),
        "{said}"
    );
    assert!(said.contains("the config needs no change"), "{said}");
    // viettel.pem is the new one; both are valid.
    assert_eq!(
        Serial::of_cert_pem(&read(&dir.join("viettel.pem"))).unwrap(),
        new
    );
    assert_eq!(
        list_json(&["--dir", d]),
        [
            ("viettel".into(), old.to_string(), "valid".into()),
            ("viettel".into(), new.to_string(), "valid".into()),
        ]
    );
    assert!(crl_serials(dir).is_empty());

    // A third, issued or signed, is refused, naming what to revoke and why.
    let index = read(&dir.join("index.json"));
    let out = popgate(["certs", "issue", "--dir", d, "--id", "viettel"]);
    assert_refused(
        &out,
        &format!("`popgate certs revoke --dir {d} --id viettel --serial {old}`"),
    );
    let err = stderr(&out);
    assert!(err.contains("already has 2 valid certificates"), "{err}");
    assert!(err.contains(&new.to_string()), "{err}");
    assert!(err.contains("at most 2 may be valid at once"), "{err}");
    let csr = dir.join("viettel.csr");
    fs::write(&csr, rcgen_csr("viettel")).unwrap();
    assert_refused(
        &popgate([
            OsStr::new("certs"),
            OsStr::new("sign"),
            OsStr::new("--dir"),
            dir.as_os_str(),
            OsStr::new("--csr"),
            csr.as_os_str(),
            OsStr::new("--id"),
            OsStr::new("viettel"),
        ]),
        "at most 2 may be valid at once",
    );
    assert_eq!(read(&dir.join("index.json")), index);
    assert_eq!(
        Serial::of_cert_pem(&read(&dir.join("viettel.pem"))).unwrap(),
        new
    );
    // Other clients are not affected by viettel's two.
    issue(d, "vnpt");
}

#[test]
fn revoke_serial_revokes_one_certificate_and_refuses_a_serial_it_does_not_own() {
    let tmp = ca_dir();
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let (old, _) = issue(d, "viettel");
    let (new, _) = issue(d, "viettel");
    let (vnpt, _) = issue(d, "vnpt");

    let refusals = [
        (
            old.to_string(),
            "vnpt",
            "is a certificate of client \"viettel\", not of \"vnpt\"",
        ),
        (
            vnpt.to_string(),
            "viettel",
            "is a certificate of client \"vnpt\"",
        ),
        (
            "40aa".to_owned(),
            "viettel",
            "no certificate with serial 40aa",
        ),
        (
            "zz".to_owned(),
            "viettel",
            "--serial \"zz\" is not a certificate serial",
        ),
        ("abc".to_owned(), "viettel", "is not a certificate serial"),
        (String::new(), "viettel", "is not a certificate serial"),
    ];
    let index = read(&dir.join("index.json"));
    for (serial, id, needle) in &refusals {
        assert_refused(
            &popgate([
                "certs", "revoke", "--dir", d, "--id", id, "--serial", serial,
            ]),
            needle,
        );
    }
    assert_eq!(
        read(&dir.join("index.json")),
        index,
        "a refusal changes nothing"
    );
    assert!(crl_serials(dir).is_empty());

    let out = popgate([
        "certs",
        "revoke",
        "--dir",
        d,
        "--id",
        "viettel",
        "--serial",
        &old.to_string(),
    ]);
    assert_ok(&out);
    let said = stdout(&out);
    assert!(
        said.contains(&format!(
            "revoked 1 certificate of \"viettel\": serial {old}"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("\"viettel\" keeps serial {new}")),
        "{said}"
    );
    assert_eq!(crl_serials(dir), vec![old.clone()]);
    assert_eq!(
        list_json(&["--dir", d, "--id", "viettel"]),
        [
            ("viettel".into(), old.to_string(), "revoked".into()),
            ("viettel".into(), new.to_string(), "valid".into()),
        ]
    );

    // Again, in the colon-separated upper-case form `openssl x509 -text` prints: only the CRL
    // is rewritten.
    let colons: Vec<String> = old.as_bytes().iter().map(|b| format!("{b:02X}")).collect();
    let out = popgate([
        "certs",
        "revoke",
        "--dir",
        d,
        "--id",
        "viettel",
        "--serial",
        &colons.join(":"),
    ]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("was revoked already"),
        "{}",
        stdout(&out)
    );
    assert_eq!(crl_serials(dir), vec![old.clone()]);

    // The revoked one leaves room for the next renewal.
    issue(d, "viettel");
}

#[test]
fn revoke_id_alone_revokes_every_certificate_of_the_client_and_counts_them() {
    let tmp = ca_dir();
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let (a, _) = issue(d, "viettel");
    let (b, _) = issue(d, "viettel");
    let (vnpt, _) = issue(d, "vnpt");
    let out = popgate(["certs", "revoke", "--dir", d, "--id", "viettel"]);
    assert_ok(&out);
    let said = stdout(&out);
    assert!(
        said.contains(&format!(
            "revoked 2 certificates of \"viettel\": serial {a}, {b}"
        )),
        "{said}"
    );
    assert!(
        said.contains("\"viettel\" has no valid certificate left"),
        "{said}"
    );
    let mut crl = crl_serials(dir);
    crl.sort_by_key(|s| s.to_string());
    let mut want = vec![a, b];
    want.sort_by_key(|s| s.to_string());
    assert_eq!(crl, want);
    assert_eq!(
        list_json(&["--dir", d, "--id", "vnpt"]),
        [("vnpt".into(), vnpt.to_string(), "valid".into())]
    );
    let out = popgate(["certs", "revoke", "--dir", d, "--id", "viettel"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("no certificate left to revoke"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn list_shows_every_certificate_with_its_state_and_filters_by_id() {
    let tmp = ca_dir();
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let (expired, _) = issue(d, "viettel");
    let (revoked, _) = issue(d, "viettel");
    let (vnpt, _) = issue(d, "vnpt");
    assert_ok(&popgate([
        "certs",
        "revoke",
        "--dir",
        d,
        "--id",
        "viettel",
        "--serial",
        &revoked.to_string(),
    ]));
    // No certificate can be issued already expired, so age one in the index, as a year
    // would have.
    let path = dir.join("index.json");
    let mut index: serde_json::Value = serde_json::from_str(&read(&path)).unwrap();
    for c in index["certs"].as_array_mut().unwrap() {
        if c["serial"] == expired.to_string() {
            c["not_before"] = "2024-01-01T00:00:00Z".into();
            c["not_after"] = "2025-01-01T00:00:00Z".into();
        }
    }
    fs::write(&path, serde_json::to_string_pretty(&index).unwrap()).unwrap();
    // Neither the expired nor the revoked one counts against the limit.
    let (renewed, _) = issue(d, "viettel");
    let (again, _) = issue(d, "viettel");

    assert_eq!(
        list_json(&["--dir", d]),
        [
            ("viettel".into(), expired.to_string(), "expired".into()),
            ("viettel".into(), revoked.to_string(), "revoked".into()),
            ("viettel".into(), renewed.to_string(), "valid".into()),
            ("viettel".into(), again.to_string(), "valid".into()),
            ("vnpt".into(), vnpt.to_string(), "valid".into()),
        ]
    );
    assert_eq!(list_json(&["--dir", d, "--id", "viettel"]).len(), 4);
    assert!(list_json(&["--dir", d, "--id", "nobody"]).is_empty());

    let out = popgate(["certs", "list", "--dir", d]);
    assert_ok(&out);
    let table = stdout(&out);
    let row = |serial: &Serial| {
        table
            .lines()
            .find(|l| l.contains(&serial.to_string()))
            .unwrap_or_else(|| panic!("{serial} not listed: {table}"))
            .to_owned()
    };
    assert!(row(&expired).contains("2025-01-01T00:00:00Z"));
    assert!(row(&expired).contains(" expired "));
    assert!(row(&revoked).contains(" revoked "));
    assert!(row(&renewed).contains(" valid "));
    assert!(row(&vnpt).starts_with("vnpt "));
    let out = popgate(["certs", "list", "--dir", d, "--id", "vnpt"]);
    assert_ok(&out);
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
    let out = popgate(["certs", "list", "--dir", d, "--id", "nobody"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("no client certificates of \"nobody\""),
        "{}",
        stdout(&out)
    );
    assert_refused(
        &popgate(["certs", "list", "--dir", d, "--id", "../x"]),
        "invalid client id",
    );
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
