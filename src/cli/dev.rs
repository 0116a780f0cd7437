//! `serve --dev`: the newcomer's first run. Creates a directory with a dev CA, server and
//! sample-client certificates (DOMAIN.md), a config and 100,000 synthetic citizens; later
//! runs reuse it. Built in a temporary sibling and renamed into place, so an interrupted
//! first run leaves nothing half-made behind.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::pki;
use crate::store::SledStore;
use crate::synth;

/// Citizens in a fresh dev setup.
pub(super) const DEV_CITIZENS: u64 = 100_000;
/// The seed of the dev population, so every newcomer sees the same people.
pub(super) const DEV_SEED: u64 = 20_210_701;

/// A sample client of DOMAIN.md: (id, kind, role, read, verify, purposes, rate, burst).
type Sample = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
    u32,
    u32,
);

const TELECOM_VERIFY: &[&str] = &["full_name", "date_of_birth", "sex"];
const SAMPLES: &[Sample] = &[
    (
        "viettel",
        "telecom",
        "agency",
        &[],
        TELECOM_VERIFY,
        &["subscriber-verification"],
        20_000,
        40_000,
    ),
    (
        "vnpt",
        "telecom",
        "agency",
        &[],
        TELECOM_VERIFY,
        &["subscriber-verification"],
        20_000,
        40_000,
    ),
    (
        "mobifone",
        "telecom",
        "agency",
        &[],
        TELECOM_VERIFY,
        &["subscriber-verification"],
        20_000,
        40_000,
    ),
    (
        "evn",
        "utility",
        "agency",
        &["full_name", "permanent_address"],
        &["full_name", "permanent_address"],
        &["electricity-contract"],
        5_000,
        10_000,
    ),
    (
        "moh",
        "ministry",
        "agency",
        &[
            "full_name",
            "date_of_birth",
            "sex",
            "permanent_address",
            "current_address",
            "nationality",
            "ethnicity",
            "life_status",
            "card_expires_on",
        ],
        &["full_name", "date_of_birth", "sex"],
        &["health-insurance"],
        10_000,
        20_000,
    ),
    (
        "mof-tax",
        "ministry",
        "agency",
        &[
            "full_name",
            "date_of_birth",
            "permanent_address",
            "current_address",
        ],
        &["full_name", "date_of_birth", "permanent_address"],
        &["tax-registration"],
        5_000,
        10_000,
    ),
    (
        "hanoi",
        "locality",
        "agency",
        &[
            "full_name",
            "date_of_birth",
            "sex",
            "place_of_origin",
            "permanent_address",
            "current_address",
            "ethnicity",
            "religion",
            "nationality",
            "card_issued_on",
            "card_expires_on",
            "household_head_id",
            "life_status",
        ],
        &["full_name", "date_of_birth", "sex", "permanent_address"],
        &["administrative-procedure", "residence-registration"],
        5_000,
        10_000,
    ),
    (
        "registry",
        "registry",
        "registry",
        &[],
        &[],
        &[],
        2_000,
        4_000,
    ),
    ("operator", "operator", "operator", &[], &[], &[], 100, 200),
];

fn list(items: &[&str]) -> String {
    let quoted: Vec<_> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The dev configuration file's text.
pub fn dev_config() -> String {
    let mut s = String::from(
        r#"# popgate development setup, written by `popgate serve --dev`. See CONTRACT.md §3.
[server]
listen = "127.0.0.1:7443"
metrics_listen = "127.0.0.1:9464"

[tls]
cert = "certs/server.pem"
key = "certs/server.key"
client_ca = "certs/ca.pem"
crl = "certs/ca.crl"

[store]
path = "data/population"

[audit]
dir = "data/audit"
durability = "sync"
flush_ms = 5
signing_key = "certs/audit.key"

[cache]
capacity = 1000000
ttl_secs = 300
"#,
    );
    for (id, kind, role, read, verify, purposes, rate, burst) in SAMPLES {
        let _ = write!(
            s,
            "\n[[clients]]\nid = {id:?}\nkind = {kind:?}\nrole = {role:?}\nread = {}\nverify = {}\npurposes = {}\nrate_per_sec = {rate}\nburst = {burst}\n",
            list(read),
            list(verify),
            list(purposes)
        );
    }
    s
}

/// Makes sure `dir` holds a dev setup and returns its config file.
pub fn prepare(dir: &Path) -> anyhow::Result<PathBuf> {
    let config = dir.join("popgate.toml");
    if config.is_file() {
        tracing::info!(dir = %dir.display(), "reusing the dev setup");
        return Ok(config);
    }
    if dir.exists() {
        bail!(
            "--dir {}: exists but holds no popgate.toml; remove it or choose another --dir",
            dir.display()
        );
    }
    let started = Instant::now();
    let name = dir
        .file_name()
        .context("--dir: give a directory name")?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    build(&tmp).with_context(|| format!("creating the dev setup in {}", tmp.display()))?;
    std::fs::rename(&tmp, dir)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), dir.display()))?;
    tracing::info!(
        dir = %dir.display(),
        secs = format!("{:.1}", started.elapsed().as_secs_f64()),
        "dev setup created"
    );
    Ok(config)
}

fn build(dir: &Path) -> anyhow::Result<()> {
    let certs_dir = dir.join("certs");
    std::fs::create_dir_all(&certs_dir)?;
    pki::init(&certs_dir)?;
    for (id, ..) in SAMPLES {
        pki::issue(&certs_dir, id, 365)?;
    }
    std::fs::write(dir.join("popgate.toml"), dev_config())?;
    std::fs::create_dir_all(dir.join("data/audit"))?;
    let store = SledStore::open(&dir.join("data/population"))?;
    tracing::info!(count = DEV_CITIZENS, "seeding synthetic citizens");
    synth::seed_store(
        &store,
        &synth::SeedPlan::new(DEV_CITIZENS, DEV_SEED),
        |_| {},
    )?;
    Ok(())
}

/// What to try next, printed once the dev gateway listens.
pub fn print_next_steps(dir: &Path, listen: SocketAddr) {
    let d = dir.display();
    let someone = synth::citizen_at(DEV_SEED, 0);
    println!(
        "\npopgate dev gateway on {listen} (mTLS; certificates in {d}/certs)\n\
         Try, in another terminal:\n  \
         popgate lookup --dev --dir {d} --as moh {id}\n  \
         popgate verify --dev --dir {d} --as viettel {id} --name \"{name}\" --dob {dob} --loose\n  \
         popgate lookup --dev --dir {d} --as evn {id} --fields full_name,permanent_address\n  \
         popgate audit query --dir {d}/data/audit --citizen {id}\n\
         (with cargo: cargo run --release -- lookup --dev ...)\n",
        id = someone.id,
        name = crate::matching::normalize(&someone.full_name, crate::matching::Mode::Loose)
            .to_uppercase(),
        dob = someone.date_of_birth,
    );
}
