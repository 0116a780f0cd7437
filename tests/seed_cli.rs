//! `popgate seed` end to end: the real binary writes a store that the library reads back.

use std::process::Command;

use popgate::store::{Loader, SledStore, Store};
use popgate::synth::{citizen_at, citizen_id_at};

fn popgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_popgate"))
}

#[tokio::test]
async fn seeds_a_store_that_holds_exactly_the_generated_citizens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("population");
    let out = popgate()
        .args(["seed", "--data"])
        .arg(&data)
        .args(["--count", "5000", "--seed", "77"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("seeded 5000 citizens (seed 77)"),
        "{stdout}"
    );
    assert!(stdout.contains("records/s"), "{stdout}");
    assert!(stdout.contains("the store holds 5000 citizens"), "{stdout}");

    let store = SledStore::open(&data).unwrap();
    assert_eq!(Loader::count(&store).unwrap(), 5000);
    for i in [0, 1, 2, 1999, 2000, 4321, 4999] {
        assert_eq!(
            store.get(citizen_id_at(77, i)).await.unwrap(),
            Some(citizen_at(77, i)),
            "record {i}"
        );
    }
    assert_eq!(store.get(citizen_id_at(77, 5000)).await.unwrap(), None);
}

#[test]
fn bad_usage_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("population");
    let out = popgate()
        .args(["seed", "--count", "0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--count must be between 1 and"), "{stderr}");
    assert!(!data.exists(), "nothing is created for a refused run");

    // A store path that cannot be a directory.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a store").unwrap();
    let out = popgate()
        .args(["seed", "--count", "10", "--data"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot seed --data"), "{stderr}");

    // Missing --count is clap's usage error, also exit 2.
    let out = popgate()
        .args(["seed", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
