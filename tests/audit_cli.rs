//! `popgate audit …` as an operator runs it: the real binary on a real log. The tamper matrix
//! edits copies of one log in every way the issue lists and expects `audit verify` to exit 1
//! naming the first bad record.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use popgate::audit::checkpoint::{self, CHECKPOINT_FILE, Checkpoint, Signer};
use popgate::audit::scan;
use popgate::audit::{AuditEvent, AuditLog, AuditOptions, Outcome};

const CLIENTS: [&str; 3] = ["viettel", "evn-hanoi", "mof"];

fn event(i: u64) -> AuditEvent {
    let outcome = match i % 10 {
        7 => Outcome::Denied,
        8 => Outcome::NotFound,
        9 => Outcome::Invalid,
        _ => Outcome::Ok,
    };
    AuditEvent {
        client: CLIENTS[(i % 3) as usize].into(),
        // viettel renews: every other call of its is made with its new certificate.
        cert_sha256: if i.is_multiple_of(6) { "ab" } else { "cd" }
            .repeat(32)
            .into(),
        peer: format!("10.0.0.{}:5000", i % 3).into(),
        method: if i.is_multiple_of(2) {
            "Lookup"
        } else {
            "Verify"
        },
        citizen_id: Some(if i.is_multiple_of(5) {
            "001203004567".to_string()
        } else {
            format!("079{i:09}")
        }),
        fields: vec!["full_name"],
        purpose: format!("purpose-{}", i % 3),
        request_id: format!("req-{i}"),
        outcome,
        reused: outcome == Outcome::Ok && i.is_multiple_of(4),
        latency_us: i,
        count: None,
        reason: (outcome == Outcome::Denied).then(|| "field not allowed: religion".to_string()),
    }
}

/// A log of `n` records, files of about five records, a signed checkpoint every 10.
/// Returns (audit dir, public key file).
fn build_log(root: &Path, n: u64) -> (PathBuf, PathBuf) {
    let (pem, pub_hex) = checkpoint::generate_signing_key().unwrap();
    let key = root.join("audit.key");
    fs::write(&key, pem).unwrap();
    let pubkey = root.join("audit.pub");
    fs::write(&pubkey, format!("{pub_hex}\n")).unwrap();
    let dir = root.join("audit");
    append(&dir, &key, 1..=n);
    (dir, pubkey)
}

/// Opens the log in `dir` as the gateway would (files of about five records, a checkpoint
/// every 10, signed with `key`), appends `seqs` and shuts it down.
fn append(dir: &Path, key: &Path, seqs: std::ops::RangeInclusive<u64>) {
    let mut o = AuditOptions::new(dir);
    o.roll_bytes = 2400;
    o.checkpoint_every = 10;
    o.signing_key = Some(key.to_owned());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = AuditLog::open(o).unwrap();
        for i in seqs {
            assert_eq!(log.append(event(i)).await.unwrap(), i);
        }
        log.shutdown().await.unwrap();
    });
}

fn popgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popgate"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn verify(dir: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["audit", "verify", "--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = popgate(&args);
    (
        out.status.code().unwrap(),
        text(&out.stdout) + &text(&out.stderr),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    scan::list_files(dir)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect()
}

fn lines_of(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(p: &Path, lines: &[String]) {
    let s: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(p, s).unwrap();
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn tamper_matrix() {
    let root = tempfile::tempdir().unwrap();
    let (pristine, pubkey) = build_log(root.path(), 40);
    let pk = pubkey.to_str().unwrap();
    let all = files(&pristine);
    assert!(all.len() >= 5, "{all:?}");

    // Intact, with and without the key.
    let (code, out) = verify(&pristine, &["--pubkey", pk]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("intact: 40 record(s)") && out.contains("signatures verified"),
        "{out}"
    );
    let (code, out) = verify(&pristine, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not checked"), "{out}");

    let mut case = 0;
    let mut tampered = |edit: &dyn Fn(&Path), expect: &[&str]| {
        case += 1;
        let dir = root.path().join(format!("case{case}"));
        copy_dir(&pristine, &dir);
        edit(&dir);
        let (code, out) = verify(&dir, &["--pubkey", pk]);
        assert_eq!(code, 1, "case {case}: {out}");
        let first = out.lines().next().unwrap_or_default().to_string();
        assert!(first.starts_with("NOT INTACT:"), "case {case}: {out}");
        for e in expect {
            assert!(first.contains(e), "case {case}: {e:?} not in {first:?}");
        }
    };
    let second = name(&all[1]);
    let second_first_seq = scan::parse_file_name(&second).unwrap();

    // One byte changed in a record (in its request id).
    tampered(
        &|d| {
            let p = d.join(&second);
            let mut l = lines_of(&p);
            l[1] = l[1].replacen("req-", "reg-", 1);
            write_lines(&p, &l);
        },
        &[
            &second,
            "line 2",
            &format!("seq {}", second_first_seq + 1),
            "hash",
        ],
    );
    // One byte changed in a hash.
    tampered(
        &|d| {
            let p = d.join(&second);
            let mut l = lines_of(&p);
            let last = l[0].len() - 3;
            let c = if &l[0][last..last + 1] == "0" {
                "1"
            } else {
                "0"
            };
            l[0].replace_range(last..last + 1, c);
            write_lines(&p, &l);
        },
        &[&second, "line 1", &format!("seq {second_first_seq}")],
    );
    // A record deleted.
    tampered(
        &|d| {
            let p = d.join(&second);
            let mut l = lines_of(&p);
            l.remove(1);
            write_lines(&p, &l);
        },
        &[
            &second,
            "line 2",
            &format!("seq {}", second_first_seq + 2),
            "missing",
        ],
    );
    // A record inserted (a copy of another).
    tampered(
        &|d| {
            let p = d.join(&second);
            let mut l = lines_of(&p);
            let dup = l[0].clone();
            l.insert(2, dup);
            write_lines(&p, &l);
        },
        &[
            &second,
            "line 3",
            &format!("seq {second_first_seq}"),
            "inserted",
        ],
    );
    // Two records swapped.
    tampered(
        &|d| {
            let p = d.join(&second);
            let mut l = lines_of(&p);
            l.swap(1, 2);
            write_lines(&p, &l);
        },
        &[&second, "line 2", &format!("seq {}", second_first_seq + 2)],
    );
    // Records cut off the end past a checkpoint (the last file removed, the one before
    // shortened): the chain alone cannot tell, the checkpoint at 40 does.
    tampered(
        &|d| {
            let fs_ = files(d);
            fs::remove_file(fs_.last().unwrap()).unwrap();
            let p = &fs_[fs_.len() - 2];
            let mut l = lines_of(p);
            l.pop();
            write_lines(p, &l);
        },
        &["cut off", "checkpoints.jsonl"],
    );
    // A whole middle file deleted.
    tampered(
        &|d| fs::remove_file(d.join(&second)).unwrap(),
        &[&name(&all[2]), "missing"],
    );
    // A checkpoint forged (the seq it names changed, the signature kept).
    let cp_seq = seqs(&pristine.join(CHECKPOINT_FILE))[1];
    tampered(
        &|d| {
            let p = d.join(CHECKPOINT_FILE);
            let mut l = lines_of(&p);
            l[1] = l[1].replacen(
                &format!("\"seq\":{cp_seq},"),
                &format!("\"seq\":{},", cp_seq + 1),
                1,
            );
            write_lines(&p, &l);
        },
        &["checkpoints.jsonl line 2", "signature"],
    );

    // Both files cut consistently: only a witness copy taken earlier shows it.
    let dir = root.path().join("both-cut");
    copy_dir(&pristine, &dir);
    let witness = root.path().join("witness.jsonl");
    fs::copy(dir.join(CHECKPOINT_FILE), &witness).unwrap();
    let last = files(&dir).pop().unwrap();
    let first_of_last = scan::parse_file_name(&name(&last)).unwrap();
    fs::remove_file(&last).unwrap();
    let cps: Vec<String> = lines_of(&dir.join(CHECKPOINT_FILE))
        .into_iter()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["seq"].as_u64().unwrap() < first_of_last
        })
        .collect();
    write_lines(&dir.join(CHECKPOINT_FILE), &cps);
    let (code, out) = verify(&dir, &["--pubkey", pk]);
    assert_eq!(code, 0, "undetectable without a witness: {out}");
    let (code, out) = verify(
        &dir,
        &["--pubkey", pk, "--checkpoint", witness.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cut off") && out.contains("witness"), "{out}");
}

/// Seq of each line of a log or checkpoint file.
fn seqs(p: &Path) -> Vec<u64> {
    lines_of(p)
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// An operator archives the oldest files: every file boundary has a signed checkpoint, so
/// `audit verify --archived` checks what is left from any of them, and still refuses a start
/// that no checkpoint vouches for.
#[test]
fn archived_files_verify_from_the_checkpoint_of_the_record_before() {
    let root = tempfile::tempdir().unwrap();
    let (pristine, pubkey) = build_log(root.path(), 40);
    let pk = pubkey.to_str().unwrap();
    let all = files(&pristine);
    assert!(all.len() >= 5, "{all:?}");

    // The writer checkpointed the last record of every file it left.
    let checkpointed = seqs(&pristine.join(CHECKPOINT_FILE));
    for f in &all[..all.len() - 1] {
        let last = *seqs(f).last().unwrap();
        assert!(
            checkpointed.contains(&last),
            "{} ends at {last}: {checkpointed:?}",
            name(f)
        );
    }

    for k in 1..all.len() {
        let dir = root.path().join(format!("archived{k}"));
        copy_dir(&pristine, &dir);
        for f in &all[..k] {
            fs::remove_file(dir.join(name(f))).unwrap();
        }
        let first = scan::parse_file_name(&name(&all[k])).unwrap();
        let (code, out) = verify(&dir, &["--pubkey", pk]);
        assert_eq!(
            code, 1,
            "without --archived the missing start is a problem: {out}"
        );
        assert!(
            out.contains(&format!("records 1..{} are missing", first - 1))
                && out.contains("--archived"),
            "{out}"
        );
        let (code, out) = verify(&dir, &["--pubkey", pk, "--archived"]);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&format!(
                "intact: {} record(s) from seq {first} (older records archived)",
                41 - first
            )) && out.contains("signatures verified")
                && out.contains(&format!("records 1..{} are archived", first - 1)),
            "{out}"
        );
    }

    // The gateway restarted on an archived directory goes on from its head, and the whole
    // stays verifiable.
    let dir = root.path().join("archived-restarted");
    copy_dir(&pristine, &dir);
    for f in &all[..2] {
        fs::remove_file(dir.join(name(f))).unwrap();
    }
    append(&dir, &root.path().join("audit.key"), 41..=50);
    let first = scan::parse_file_name(&name(&all[2])).unwrap();
    let (code, out) = verify(&dir, &["--pubkey", pk, "--archived"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "intact: {} record(s) from seq {first}",
            51 - first
        )),
        "{out}"
    );

    let second = name(&all[1]);
    let first = scan::parse_file_name(&second).unwrap();
    let archive = |case: &str, edit: &dyn Fn(&Path), extra: &[&str]| -> String {
        let dir = root.path().join(case);
        copy_dir(&pristine, &dir);
        fs::remove_file(dir.join(name(&all[0]))).unwrap();
        edit(&dir);
        let mut args = vec!["--archived"];
        args.extend_from_slice(extra);
        let (code, out) = verify(&dir, &args);
        assert_eq!(code, 1, "{case}: {out}");
        assert!(out.starts_with("NOT INTACT:"), "{case}: {out}");
        out
    };
    let drop_checkpoint = |d: &Path, seq: u64| {
        let p = d.join(CHECKPOINT_FILE);
        let kept: Vec<String> = lines_of(&p)
            .into_iter()
            .filter(|l| !l.starts_with(&format!("{{\"seq\":{seq},")))
            .collect();
        write_lines(&p, &kept);
    };
    // No checkpoint of the record before: archiving cannot be told from deletion.
    let out = archive(
        "no-anchor",
        &|d| drop_checkpoint(d, first - 1),
        &["--pubkey", pk],
    );
    assert!(
        out.contains(&second) && out.contains(&format!("no checkpoint of seq {}", first - 1)),
        "{out}"
    );
    // The anchoring checkpoint altered: with the key its signature fails and it anchors
    // nothing; without the key, it contradicts the first record.
    let alter = |d: &Path| {
        let p = d.join(CHECKPOINT_FILE);
        let l: Vec<String> = lines_of(&p)
            .into_iter()
            .map(|l| {
                if l.starts_with(&format!("{{\"seq\":{},", first - 1)) {
                    let at = l.find("\"hash\":\"").unwrap() + 8;
                    let c = if &l[at..at + 1] == "0" { "1" } else { "0" };
                    let mut l = l.clone();
                    l.replace_range(at..at + 1, c);
                    l
                } else {
                    l
                }
            })
            .collect();
        write_lines(&p, &l);
    };
    let out = archive("altered-signed", &alter, &["--pubkey", pk]);
    assert!(
        out.contains(&format!("no checkpoint of seq {}", first - 1)) && out.contains("signature"),
        "{out}"
    );
    let out = archive("altered-unsigned", &alter, &[]);
    assert!(out.contains("prev differs from the hash"), "{out}");
    // A file deleted further on is still a gap.
    let out = archive(
        "gap",
        &|d| fs::remove_file(d.join(name(&all[2]))).unwrap(),
        &["--pubkey", pk],
    );
    assert!(
        out.contains(&name(&all[3])) && out.contains("missing"),
        "{out}"
    );
    // The first record left edited: its own hash says so before any anchoring.
    let out = archive(
        "edited",
        &|d| {
            let p = d.join(&second);
            let mut l = lines_of(&p);
            l[0] = l[0].replacen("req-", "reg-", 1);
            write_lines(&p, &l);
        },
        &["--pubkey", pk],
    );
    assert!(
        out.contains(&second) && out.contains("line 1") && out.contains("hash"),
        "{out}"
    );
}

/// The signing key is rotated with `certs audit-key` and a restart: `audit verify` takes every
/// key in use since the log began, oldest first, and refuses a checkpoint signed by a retired
/// key after its successor took over.
#[test]
fn a_rotated_signing_key_verifies_with_both_keys_in_order() {
    let root = tempfile::tempdir().unwrap();
    let (dir, old_pub) = build_log(root.path(), 40);
    let old = old_pub.to_str().unwrap();

    // A new key, never over an existing one.
    let new_key = root.path().join("audit-2027.key");
    let out = popgate(&["certs", "audit-key", "--out", new_key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new_pub = root.path().join("audit-2027.pub");
    let hex = fs::read_to_string(&new_pub).unwrap();
    assert!(
        hex.trim().len() == 64 && hex.trim().bytes().all(|b| b.is_ascii_hexdigit()),
        "{hex:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&new_key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = fs::read(&new_key).unwrap();
    let again = popgate(&["certs", "audit-key", "--out", new_key.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("exists already"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(fs::read(&new_key).unwrap(), before, "not overwritten");
    let bad = popgate(&["certs", "audit-key", "--out", new_pub.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains(".pub"), "{}", text(&bad.stderr));

    // The gateway restarted with the new key goes on signing with it.
    append(&dir, &new_key, 41..=60);
    let new = new_pub.to_str().unwrap();

    let (code, out) = verify(&dir, &["--pubkey", old, "--pubkey", new]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("intact: 60 record(s)") && out.contains("signatures verified"),
        "{out}"
    );
    for keys in [vec!["--pubkey", old], vec!["--pubkey", new]] {
        let (code, out) = verify(&dir, &keys);
        assert_eq!(code, 1, "one key alone: {out}");
        assert!(
            out.contains("does not verify with the given public key"),
            "{out}"
        );
    }
    let (code, out) = verify(&dir, &["--pubkey", new, "--pubkey", old]);
    assert_eq!(code, 1, "newest first: {out}");
    assert!(out.contains("a retired key signed it"), "{out}");

    // Someone holding the old key re-signs the last checkpoint with it.
    let old_signer = Signer::from_pem_file(&root.path().join("audit.key")).unwrap();
    let path = dir.join(CHECKPOINT_FILE);
    let mut lines = lines_of(&path);
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let (seq, hash, ts) = (
        last["seq"].as_u64().unwrap(),
        last["hash"].as_str().unwrap().to_string(),
        last["ts"].as_str().unwrap().to_string(),
    );
    let forged = Checkpoint {
        seq,
        hash: hash.clone(),
        ts: ts.clone(),
        sig: Some(old_signer.sign(seq, &hash, &ts)),
    };
    *lines.last_mut().unwrap() = String::from_utf8(forged.to_line())
        .unwrap()
        .trim_end()
        .to_string();
    write_lines(&path, &lines);
    let (code, out) = verify(&dir, &["--pubkey", old, "--pubkey", new]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("(seq {seq})")) && out.contains("a retired key signed it"),
        "{out}"
    );
}

#[test]
fn query_report_and_stats() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _) = build_log(root.path(), 30);
    let d = dir.to_str().unwrap();

    // Query by client, as JSON lines.
    let out = popgate(&["audit", "query", "--dir", d, "--client", "mof", "--json"]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    assert!(lines.iter().all(|v| v["client"] == "mof"));

    // Query by certificate: which calls still come with viettel's old one.
    let (new, old) = ("ab".repeat(32), "cd".repeat(32));
    let seqs_of = |args: &[&str]| -> Vec<u64> {
        let out = popgate(&[&["audit", "query", "--dir", d, "--json"], args].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(v["cert_sha256"] == new || v["cert_sha256"] == old);
                v["seq"].as_u64().unwrap()
            })
            .collect()
    };
    assert_eq!(seqs_of(&["--cert", &new]), [6, 12, 18, 24, 30]);
    assert_eq!(
        seqs_of(&["--client", "viettel", "--cert", &old]),
        [3, 9, 15, 21, 27]
    );
    assert_eq!(seqs_of(&["--cert", &old]).len(), 25);
    assert!(seqs_of(&["--cert", &"ef".repeat(32)]).is_empty());

    // Query by outcome, as a table.
    let out = popgate(&["audit", "query", "--dir", d, "--outcome", "denied"]);
    let t = text(&out.stdout);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("3 record(s)"), "{t}");
    assert!(t.contains("field not allowed: religion"), "{t}");

    // Time range: nothing before the epoch-ish, everything before far future.
    let out = popgate(&[
        "audit",
        "query",
        "--dir",
        d,
        "--until",
        "2000-01-01",
        "--json",
    ]);
    assert!(out.status.success() && out.stdout.is_empty());
    let out = popgate(&[
        "audit",
        "query",
        "--dir",
        d,
        "--since",
        "2000-01-01T00:00:00+07:00",
        "--json",
    ]);
    assert_eq!(text(&out.stdout).lines().count(), 30);

    // Report: this citizen's accesses, newest first.
    let out = popgate(&["audit", "report", "--dir", d, "--citizen", "001203004567"]);
    let t = text(&out.stdout);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("6 access(es)"), "{t}");
    let seqs: Vec<u64> = t
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().nth(7).unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs, vec![30, 25, 20, 15, 10, 5]);
    let out = popgate(&[
        "audit",
        "report",
        "--dir",
        d,
        "--citizen",
        "001203004567",
        "--json",
    ]);
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 30);

    // Stats.
    let out = popgate(&["audit", "stats", "--dir", d, "--json"]);
    assert!(out.status.success());
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["records"], 30);
    assert_eq!(s["total"]["calls"], 30);
    assert_eq!(s["total"]["denied"], 3);
    assert_eq!(s["total"]["not_found"], 3);
    assert_eq!(s["clients"]["mof"]["calls"], 10);
    let out = popgate(&["audit", "stats", "--dir", d]);
    let t = text(&out.stdout);
    assert!(t.contains("TOTAL") && t.contains("viettel"), "{t}");
}

#[test]
fn time_ranges_select_exactly_across_files() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _) = build_log(root.path(), 60);
    let d = dir.to_str().unwrap();
    assert!(files(&dir).len() > 5);
    let all: Vec<serde_json::Value> = files(&dir)
        .iter()
        .flat_map(|f| lines_of(f))
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    let ts = |i: usize| all[i]["ts"].as_str().unwrap().to_string();
    for (since, until) in [(17, 43), (0, 59), (5, 6), (31, 31)] {
        let (s, u) = (ts(since), ts(until));
        let out = popgate(&[
            "audit", "query", "--dir", d, "--since", &s, "--until", &u, "--json",
        ]);
        if s >= u {
            assert_eq!(out.status.code(), Some(2));
            continue;
        }
        let got: Vec<u64> = text(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        let want: Vec<u64> = all
            .iter()
            .filter(|v| {
                let t = v["ts"].as_str().unwrap();
                t >= s.as_str() && t < u.as_str()
            })
            .map(|v| v["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(got, want, "since {s} until {u}");
    }
    // --limit cuts across files in order.
    let out = popgate(&["audit", "query", "--dir", d, "--limit", "13", "--json"]);
    let got: Vec<u64> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, (1..=13).collect::<Vec<_>>());
}

#[test]
fn bad_usage_is_one_line_on_stderr_and_exit_2() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("nope");
    for args in [
        vec!["audit", "verify", "--dir", missing.to_str().unwrap()],
        vec!["audit", "query", "--dir", missing.to_str().unwrap()],
        vec![
            "audit",
            "stats",
            "--dir",
            root.path().to_str().unwrap(),
            "--since",
            "yesterday",
        ],
        vec![
            "audit",
            "verify",
            "--dir",
            root.path().to_str().unwrap(),
            "--pubkey",
            missing.to_str().unwrap(),
        ],
    ] {
        let out = popgate(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    // A fingerprint the log could never hold is refused before anything is read.
    let upper = "AB".repeat(32);
    let colons = vec!["ab"; 32].join(":");
    let long = "ab".repeat(33);
    for bad in [
        "",
        "abc",
        upper.as_str(),
        colons.as_str(),
        long.as_str(),
        &"zz".repeat(32),
    ] {
        let out = popgate(&[
            "audit",
            "query",
            "--dir",
            root.path().to_str().unwrap(),
            "--cert",
            bad,
        ]);
        assert_eq!(out.status.code(), Some(2), "--cert {bad:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("64 lowercase hex digits"), "{err}");
        assert!(
            out.stdout.is_empty(),
            "--cert {bad:?}: {}",
            text(&out.stdout)
        );
    }
    // An empty directory is an intact, empty log.
    let out = popgate(&["audit", "verify", "--dir", root.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
}
