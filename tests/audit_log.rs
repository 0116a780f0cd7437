//! The audit log through its public API, on real files in temporary directories: group
//! commit, rolling, checkpoints, recovery of a torn tail, and failing closed on a full disk.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use popgate::audit::checkpoint::{self, CHECKPOINT_FILE, PublicKey};
use popgate::audit::scan;
use popgate::audit::verify::{VerifyOptions, verify};
use popgate::audit::writer::SyncObserver;
use popgate::audit::{AuditError, AuditEvent, AuditLog, AuditOptions, Durability, Outcome};
use popgate::clock::{Clock, ManualClock};

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        client: "viettel".into(),
        cert_sha256: "ab".repeat(32).into(),
        peer: "127.0.0.1:40000".into(),
        method: if i.is_multiple_of(2) {
            "Lookup"
        } else {
            "Verify"
        },
        citizen_id: Some(format!("001203{i:06}")),
        fields: vec!["full_name", "date_of_birth"],
        purpose: "subscriber-verification".into(),
        request_id: format!("req-{i}"),
        outcome: Outcome::Ok,
        reused: i.is_multiple_of(3),
        latency_us: 100 + i,
        count: None,
        reason: None,
    }
}

fn opts(dir: &Path) -> AuditOptions {
    AuditOptions::new(dir)
}

/// Options whose timers (checkpoints, batch syncs, probes) run on a clock the test moves.
fn manual_opts(dir: &Path) -> (AuditOptions, std::sync::Arc<ManualClock>) {
    let (clock, manual) = Clock::manual();
    let mut o = AuditOptions::new(dir);
    o.clock = clock;
    (o, manual)
}

fn check_intact(dir: &Path) -> u64 {
    let rep = verify(&VerifyOptions {
        dir: dir.to_path_buf(),
        ..Default::default()
    })
    .unwrap();
    assert!(rep.intact(), "{:?}", rep.problems);
    rep.records
}

/// Every record line of the log, in order.
fn all_lines(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for f in scan::list_files(dir).unwrap() {
        let text = fs::read_to_string(&f.path).unwrap();
        out.extend(text.lines().map(str::to_string));
    }
    out
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    scan::list_files(dir)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect()
}

#[tokio::test]
async fn appends_get_gapless_seqs_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(opts(dir.path())).unwrap();
    for i in 1..=5 {
        assert_eq!(log.append(event(i)).await.unwrap(), i);
    }
    log.shutdown().await.unwrap();
    assert!(matches!(
        log.append(event(6)).await,
        Err(AuditError::Closed)
    ));
    assert_eq!(check_intact(dir.path()), 5);

    let lines = all_lines(dir.path());
    assert_eq!(lines.len(), 5);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev"], "0".repeat(64));
    assert_eq!(first["citizen_id"], "001203000001");
    assert_eq!(first["outcome"], "ok");
    let ts = first["ts"].as_str().unwrap();
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(ts.ends_with('Z'));
    // The final checkpoint names the head.
    let cps = checkpoint::read_file(&dir.path().join(CHECKPOINT_FILE)).unwrap();
    let last = cps.lines.last().unwrap().parsed.as_ref().unwrap();
    let head: serde_json::Value = serde_json::from_str(&lines[4]).unwrap();
    assert_eq!(
        (last.seq, last.hash.as_str()),
        (5, head["hash"].as_str().unwrap())
    );
    assert!(last.sig.is_none());
}

#[tokio::test]
async fn the_hash_is_sha256_of_the_line_before_its_hash_key() {
    // The documented definition, rechecked the way an outside tool would.
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(opts(dir.path())).unwrap();
    log.append(event(1)).await.unwrap();
    log.append(event(2)).await.unwrap();
    log.shutdown().await.unwrap();
    let mut prev = "0".repeat(64);
    for line in all_lines(dir.path()) {
        let cut = line.rfind(",\"hash\":\"").unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, &line.as_bytes()[..cut]);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(v["hash"], hex);
        assert_eq!(v["prev"], prev);
        prev = hex;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_many_concurrent_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.roll_bytes = 256 * 1024; // several files, so batches straddle rolls
    o.checkpoint_every = 1000;
    let log = AuditLog::open(o).unwrap();
    let tasks = 64;
    let per_task = 100;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..per_task {
                seqs.push(log.append(event(t * 1000 + i)).await.unwrap());
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for h in handles {
        seqs.extend(h.await.unwrap());
    }
    let stats = log.stats();
    log.shutdown().await.unwrap();
    seqs.sort_unstable();
    let n = tasks * per_task;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "distinct and gapless");
    assert_eq!(stats.records, n);
    // Records share syncs: far fewer fdatasyncs than records.
    assert!(
        stats.syncs * 4 < stats.records,
        "no group commit: {stats:?}"
    );
    // Every acknowledged record is on disk, in seq order.
    let lines = all_lines(dir.path());
    assert_eq!(lines.len() as u64, n);
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["seq"], i as u64 + 1);
    }
    assert!(log_files(dir.path()).len() > 2);
    assert_eq!(check_intact(dir.path()), n);
}

#[tokio::test]
async fn files_roll_and_are_named_for_their_first_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.roll_bytes = 1500; // about three records per file
    let log = AuditLog::open(o.clone()).unwrap();
    for i in 1..=20 {
        log.append(event(i)).await.unwrap();
    }
    log.shutdown().await.unwrap();
    let files = scan::list_files(dir.path()).unwrap();
    assert!(files.len() >= 5, "{files:?}");
    for f in &files {
        let text = fs::read_to_string(&f.path).unwrap();
        assert!(
            text.len() as u64 <= 1500,
            "{} is {} bytes",
            f.name(),
            text.len()
        );
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(v["seq"], f.first_seq);
    }
    // Reopen: the chain continues in the last file.
    let log = AuditLog::open(o).unwrap();
    assert_eq!(log.append(event(21)).await.unwrap(), 21);
    log.shutdown().await.unwrap();
    assert_eq!(check_intact(dir.path()), 21);
}

#[tokio::test]
async fn a_torn_last_line_is_cut_and_the_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(opts(dir.path())).unwrap();
    for i in 1..=3 {
        log.append(event(i)).await.unwrap();
    }
    log.shutdown().await.unwrap();
    let file = log_files(dir.path()).pop().unwrap();
    let good = fs::read(&file).unwrap();
    // A crash in the middle of writing record 4.
    let mut torn = good.clone();
    torn.extend_from_slice(br#"{"seq":4,"ts":"2026-11-24T05:12:33.1"#);
    fs::write(&file, &torn).unwrap();

    let log = AuditLog::open(opts(dir.path())).unwrap();
    assert_eq!(
        fs::read(&file).unwrap(),
        good,
        "torn tail cut, nothing else"
    );
    assert_eq!(log.append(event(4)).await.unwrap(), 4);
    log.shutdown().await.unwrap();
    assert_eq!(check_intact(dir.path()), 4);
}

#[tokio::test]
async fn a_line_of_zeros_after_a_crash_is_cut() {
    // What a machine crash can leave: the file grew but the data never made it.
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(opts(dir.path())).unwrap();
    log.append(event(1)).await.unwrap();
    log.shutdown().await.unwrap();
    let file = log_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    bytes.extend_from_slice(&[0u8; 700]);
    fs::write(&file, &bytes).unwrap();
    let log = AuditLog::open(opts(dir.path())).unwrap();
    assert_eq!(log.append(event(2)).await.unwrap(), 2);
    log.shutdown().await.unwrap();
    assert_eq!(check_intact(dir.path()), 2);
}

#[tokio::test]
async fn recovery_never_cuts_a_complete_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(opts(dir.path())).unwrap();
    for i in 1..=4 {
        log.append(event(i)).await.unwrap();
    }
    log.shutdown().await.unwrap();
    let file = log_files(dir.path()).pop().unwrap();
    let text = fs::read_to_string(&file).unwrap();
    let edited = text.replacen("req-2", "req-X", 1);
    fs::write(&file, &edited).unwrap();
    match AuditLog::open(opts(dir.path())) {
        Err(AuditError::Corrupt { reason, .. }) => assert!(reason.contains("line 3"), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        edited,
        "nothing rewritten"
    );
}

#[tokio::test]
async fn checkpoints_are_signed_every_n_records_and_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, pub_hex) = checkpoint::generate_signing_key().unwrap();
    let key = dir.path().join("audit.key");
    fs::write(&key, pem).unwrap();
    let logdir = dir.path().join("audit");
    let mut o = opts(&logdir);
    o.checkpoint_every = 10;
    o.signing_key = Some(key);
    let log = AuditLog::open(o).unwrap();
    for i in 1..=35 {
        log.append(event(i)).await.unwrap();
    }
    log.shutdown().await.unwrap();
    let cps = checkpoint::read_file(&logdir.join(CHECKPOINT_FILE)).unwrap();
    let seqs: Vec<u64> = cps
        .lines
        .iter()
        .map(|l| l.parsed.as_ref().unwrap().seq)
        .collect();
    assert_eq!(seqs, vec![10, 20, 30, 35]);
    let pk = PublicKey::from_hex(&pub_hex).unwrap();
    for l in &cps.lines {
        assert!(pk.verifies(l.parsed.as_ref().unwrap()));
    }
    let rep = verify(&VerifyOptions {
        dir: logdir,
        witness: None,
        pubkeys: vec![pk],
        archived: false,
    })
    .unwrap();
    assert!(rep.intact() && rep.signatures_checked, "{rep:?}");
    assert_eq!(rep.checkpoints, 4);
}

#[tokio::test]
async fn a_checkpoint_is_written_after_checkpoint_secs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut o, clock) = manual_opts(dir.path());
    o.checkpoint_secs = 10;
    let log = AuditLog::open(o).unwrap();
    let mut checkpointed = log.checkpoints();
    log.append(event(1)).await.unwrap();
    clock.advance(Duration::from_millis(9_999));
    // Appends still answer while the checkpoint is not due; they come after any the writer
    // would have written for the advance above, so the log tells whether it jumped the gun.
    log.append(event(2)).await.unwrap();
    assert_eq!(
        *checkpointed.borrow_and_update(),
        0,
        "a checkpoint before its time"
    );
    let path = dir.path().join(CHECKPOINT_FILE);
    assert!(checkpoint::read_file(&path).unwrap().lines.is_empty());
    clock.advance(Duration::from_millis(1));
    checkpointed.wait_for(|seq| *seq == 2).await.unwrap();
    assert_eq!(checkpoint::read_file(&path).unwrap().lines.len(), 1);
    log.shutdown().await.unwrap();
}

#[tokio::test]
async fn batch_mode_acknowledges_after_write_and_syncs_later() {
    let dir = tempfile::tempdir().unwrap();
    let (mut o, clock) = manual_opts(dir.path());
    o.durability = Durability::Batch;
    o.flush_ms = 20;
    let (synced_tx, mut synced) = tokio::sync::mpsc::unbounded_channel();
    o.on_sync = Some(SyncObserver(std::sync::Arc::new(move |_| {
        let _ = synced_tx.send(());
    })));
    let log = AuditLog::open(o).unwrap();
    for i in 1..=50 {
        assert_eq!(log.append(event(i)).await.unwrap(), i);
    }
    // Written (visible to readers) as soon as acknowledged, and not synced: no time passed.
    assert_eq!(all_lines(dir.path()).len(), 50);
    assert_eq!(log.stats().syncs, 0);
    clock.advance(Duration::from_millis(20));
    synced
        .recv()
        .await
        .expect("a sync flush_ms after the first write");
    // One sync covered all fifty.
    assert_eq!(log.stats().syncs, 1, "{:?}", log.stats());
    log.shutdown().await.unwrap();
    assert_eq!(check_intact(dir.path()), 50);
}

/// In `batch` mode a slow `fdatasync` (one queued behind other writeback can take hundreds of
/// ms) must not hold up appends: callers are promised an answer once their record is
/// written. The observer of syncs runs right after each sync on the thread that made it; here
/// it holds that thread until the test lets go, as a stalled sync would. Appends made
/// meanwhile must all be acknowledged and written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mode_appends_go_on_while_a_sync_is_stalled() {
    use std::sync::{Arc, Condvar, Mutex, mpsc};
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.durability = Durability::Batch;
    o.flush_ms = 1;
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let entered_tx = Mutex::new(Some(entered_tx));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let g = gate.clone();
    o.on_sync = Some(SyncObserver(Arc::new(move |_| {
        // Only the first sync stalls.
        if let Some(tx) = entered_tx.lock().unwrap().take() {
            tx.send(()).unwrap();
            let (open, cv) = &*g;
            let _open = cv.wait_while(open.lock().unwrap(), |o| !*o).unwrap();
        }
    })));
    let log = AuditLog::open(o).unwrap();
    assert_eq!(log.append(event(1)).await.unwrap(), 1);
    tokio::task::spawn_blocking(move || entered_rx.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the first record's sync ran");
    // The sync is stalled now. Appends still go through.
    let appended = tokio::time::timeout(Duration::from_secs(10), async {
        for i in 2..=50 {
            assert_eq!(log.append(event(i)).await.unwrap(), i);
        }
    })
    .await;
    let lines = all_lines(dir.path()).len();
    {
        let (open, cv) = &*gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
    assert!(appended.is_ok(), "appends waited for the stalled sync");
    assert_eq!(lines, 50);
    log.shutdown().await.unwrap();
    assert!(log.stats().syncs >= 1);
    assert_eq!(check_intact(dir.path()), 50);
}

#[tokio::test]
async fn caller_text_cannot_break_the_one_line_rule() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(opts(dir.path())).unwrap();
    let mut ev = event(1);
    ev.request_id = "a\"}\n{\"seq\":99,\u{1b}[2J\r\u{0}\u{85}".into();
    ev.client = "cn \"quoted\"\n".into();
    ev.purpose = "\\".into();
    ev.outcome = Outcome::Invalid;
    ev.reason = Some("bad request_id\n".into());
    ev.citizen_id = None;
    log.append(ev.clone()).await.unwrap();
    log.append(event(2)).await.unwrap();
    log.shutdown().await.unwrap();
    let lines = all_lines(dir.path());
    assert_eq!(lines.len(), 2);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["request_id"], ev.request_id);
    assert_eq!(v["client"], *ev.client);
    assert!(v.get("citizen_id").is_none());
    assert!(lines[0].bytes().all(|b| b >= 0x20));
    assert_eq!(check_intact(dir.path()), 2);
}

/// Waits until health is `want`.
async fn health_becomes(log: &AuditLog, want: bool) {
    let mut h = log.health();
    tokio::time::timeout(Duration::from_secs(10), h.wait_for(|v| *v == want))
        .await
        .expect("health did not change")
        .unwrap();
}

#[tokio::test]
async fn fails_closed_on_a_full_disk_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (mut o, clock) = manual_opts(dir.path());
    o.roll_bytes = 1; // every record starts a new file
    let log = AuditLog::open(o).unwrap();
    assert_eq!(log.append(event(1)).await.unwrap(), 1);
    assert!(*log.health().borrow());

    // The next file is a link to /dev/full: writes get a real ENOSPC.
    let next = dir.path().join(scan::file_name(2));
    std::os::unix::fs::symlink("/dev/full", &next).unwrap();
    let err = log.append(event(2)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("No space left"), "{err}");
    assert!(!*log.health().borrow());
    // Still failing, still not acknowledged.
    assert!(log.append(event(2)).await.unwrap_err().is_unavailable());
    assert!(!*log.health().borrow());

    // The disk has room again: health comes back without any call, at the next probe ...
    fs::remove_file(&next).unwrap();
    clock.advance(popgate::audit::writer::PROBE_EVERY);
    health_becomes(&log, true).await;
    // ... and appends continue the chain with no gap.
    assert_eq!(log.append(event(2)).await.unwrap(), 2);
    assert_eq!(log.append(event(3)).await.unwrap(), 3);
    log.shutdown().await.unwrap();
    assert_eq!(check_intact(dir.path()), 3);
    assert!(log.stats().failures >= 2);
}

#[tokio::test]
async fn fails_closed_when_the_current_file_is_dev_full_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join(scan::file_name(1));
    std::os::unix::fs::symlink("/dev/full", &first).unwrap();
    let log = AuditLog::open(opts(dir.path())).unwrap();
    assert!(log.append(event(1)).await.unwrap_err().is_unavailable());
    assert!(!*log.health().borrow());
    // An operator replaces the file with a real one.
    fs::remove_file(&first).unwrap();
    fs::write(&first, b"").unwrap();
    assert_eq!(log.append(event(1)).await.unwrap(), 1);
    assert!(*log.health().borrow());
    log.shutdown().await.unwrap();
    assert_eq!(check_intact(dir.path()), 1);
}

/// Makes a path unwritable for as long as it lives. Permission bits do not stop root, so as
/// root this sets the immutable attribute (`chattr +i`), which does; `None` when neither works.
enum ReadOnly {
    Mode(PathBuf, u32),
    Immutable(PathBuf),
}

impl ReadOnly {
    fn set(path: &Path) -> Option<ReadOnly> {
        use std::os::unix::fs::PermissionsExt;
        use std::process::Command;
        let old = fs::metadata(path).unwrap().permissions().mode();
        fs::set_permissions(path, fs::Permissions::from_mode(old & 0o555)).unwrap();
        let guard = ReadOnly::Mode(path.to_path_buf(), old);
        let probe = if path.is_dir() {
            let p = path.join(".probe");
            let r = fs::write(&p, b"x").is_err();
            let _ = fs::remove_file(&p);
            r
        } else {
            fs::OpenOptions::new().append(true).open(path).is_err()
        };
        if probe {
            return Some(guard);
        }
        drop(guard);
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| ReadOnly::Immutable(path.to_path_buf()))
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        match self {
            ReadOnly::Mode(p, mode) => {
                let _ = fs::set_permissions(p, fs::Permissions::from_mode(*mode));
            }
            ReadOnly::Immutable(p) => {
                let _ = std::process::Command::new("chattr")
                    .arg("-i")
                    .arg(p)
                    .status();
            }
        }
    }
}

#[tokio::test]
async fn fails_closed_on_a_read_only_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let mut o = opts(&dir);
    o.roll_bytes = 1; // the next record needs a new file in the directory
    let log = AuditLog::open(o).unwrap();
    assert_eq!(log.append(event(1)).await.unwrap(), 1);
    let Some(ro) = ReadOnly::set(&dir) else {
        eprintln!("skipped: cannot make a directory read-only here");
        return;
    };
    let err = log.append(event(2)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(!*log.health().borrow());
    drop(ro);
    assert_eq!(log.append(event(2)).await.unwrap(), 2);
    assert!(*log.health().borrow());
    log.shutdown().await.unwrap();
    assert_eq!(check_intact(&dir), 2);
}

#[tokio::test]
async fn a_read_only_log_file_fails_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(opts(tmp.path())).unwrap();
    log.append(event(1)).await.unwrap();
    log.shutdown().await.unwrap();
    let file = log_files(tmp.path()).pop().unwrap();
    let Some(_ro) = ReadOnly::set(&file) else {
        eprintln!("skipped: cannot make a file read-only here");
        return;
    };
    let err = AuditLog::open(opts(tmp.path())).unwrap_err();
    assert!(matches!(err, AuditError::Open { .. }), "{err}");
}

#[tokio::test]
async fn a_log_file_made_read_only_while_open_fails_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(opts(tmp.path())).unwrap();
    log.append(event(1)).await.unwrap();
    let file = log_files(tmp.path()).pop().unwrap();
    let Some(ro) = ReadOnly::set(&file) else {
        eprintln!("skipped: cannot make a file read-only here");
        return;
    };
    // An open descriptor may keep working (permission bits are checked at open); if writing
    // does fail, nothing is acknowledged and it heals once the file is writable again.
    match log.append(event(2)).await {
        Ok(seq) => assert_eq!(seq, 2),
        Err(e) => {
            assert!(e.is_unavailable(), "{e}");
            assert!(!*log.health().borrow());
            drop(ro);
            assert_eq!(log.append(event(2)).await.unwrap(), 2);
            assert!(*log.health().borrow());
        }
    }
    log.shutdown().await.unwrap();
    assert_eq!(check_intact(tmp.path()), 2);
}

#[tokio::test]
async fn dropping_every_handle_still_flushes_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut checkpointed = {
        let log = AuditLog::open(opts(dir.path())).unwrap();
        log.append(event(1)).await.unwrap();
        log.checkpoints()
    };
    // The writer finishes on its own; its final checkpoint is what it does last.
    checkpointed
        .wait_for(|seq| *seq == 1)
        .await
        .expect("a final checkpoint");
    let path = dir.path().join(CHECKPOINT_FILE);
    assert_eq!(checkpoint::read_file(&path).unwrap().lines.len(), 1);
    assert_eq!(check_intact(dir.path()), 1);
}

#[tokio::test]
async fn a_checkpoint_past_the_end_stops_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.checkpoint_every = 2;
    let log = AuditLog::open(o.clone()).unwrap();
    for i in 1..=4 {
        log.append(event(i)).await.unwrap();
    }
    log.shutdown().await.unwrap();
    // Cut the last two records off: the checkpoint at 4 shows it.
    let file = log_files(dir.path()).pop().unwrap();
    let text = fs::read_to_string(&file).unwrap();
    let keep: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    fs::write(&file, keep).unwrap();
    let err = AuditLog::open(o).unwrap_err();
    assert!(matches!(err, AuditError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn a_file_cut_by_someone_else_while_broken_is_not_padded() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(opts(tmp.path())).unwrap();
    for i in 1..=3 {
        log.append(event(i)).await.unwrap();
    }
    let file = log_files(tmp.path()).pop().unwrap();
    let Some(ro) = ReadOnly::set(&file) else {
        eprintln!("skipped: cannot make a file read-only here");
        return;
    };
    if log.append(event(4)).await.is_ok() {
        eprintln!("skipped: the open descriptor stays writable here");
        return;
    }
    drop(ro);
    // Meanwhile someone cuts the file back to its first record.
    let first = fs::read_to_string(&file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
        + "\n";
    fs::write(&file, &first).unwrap();
    // Writing works again; the chain goes on from what was acknowledged ...
    assert_eq!(log.append(event(4)).await.unwrap(), 4);
    log.shutdown().await.unwrap();
    // ... without NUL padding, and verify shows the loss.
    let bytes = fs::read(&file).unwrap();
    assert!(!bytes.contains(&0));
    assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 2);
    let rep = verify(&VerifyOptions {
        dir: tmp.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap();
    assert!(!rep.intact());
    assert!(
        rep.problems[0].what.contains("missing"),
        "{:?}",
        rep.problems
    );
}
