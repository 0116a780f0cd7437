//! `popgate certs …`: the dev CA, server and client certificates, revocation, and signing
//! agencies' CSRs. A thin shell over [`crate::pki`] (and [`crate::audit::signing_key`] for
//! `audit-key`): parse, call, then say what was written and what to do next.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use time::OffsetDateTime;

use crate::audit::signing_key;
use crate::pki;

#[derive(Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Create a CA, a server certificate, an empty CRL and the audit signing key in DIR.
    Init(InitArgs),
    /// Issue a client certificate and key: DIR/ID.pem and DIR/ID.key (a renewal: an earlier
    /// certificate of ID stays valid until revoked; at most two at once).
    Issue(IssueArgs),
    /// Revoke one certificate of a client (--serial) or all of them, and rewrite DIR/ca.crl.
    Revoke(RevokeArgs),
    /// Sign an agency's CSR as its client certificate: DIR/ID.pem (a renewal: an earlier
    /// certificate of ID stays valid until revoked; at most two at once).
    Sign(SignArgs),
    /// List the client certificates issued from DIR, with their serials, expiry and state.
    List(ListArgs),
    /// Create a new audit signing key (to rotate it): FILE and its public key FILE.pub beside it.
    AuditKey(AuditKeyArgs),
}

#[derive(Args)]
struct AuditKeyArgs {
    /// Where to write the private key (mode 0600), e.g. /etc/popgate/audit-2027.key; the public
    /// key goes beside it with the extension .pub. Neither may exist.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args)]
struct InitArgs {
    /// Directory to create the CA in; it must not hold one already.
    #[arg(long)]
    dir: PathBuf,
    /// Host name or IP address for the server certificate (repeat for several).
    #[arg(long = "host", value_name = "HOST", default_values_t = pki::DEFAULT_SERVER_HOSTS.iter().map(|h| h.to_string()))]
    hosts: Vec<String>,
}

#[derive(Args)]
struct IssueArgs {
    /// Directory holding the CA (from `certs init`).
    #[arg(long)]
    dir: PathBuf,
    /// Client id: becomes the certificate's CN and must match `[[clients]] id` in the config.
    #[arg(long)]
    id: String,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = pki::DEFAULT_DAYS)]
    days: u32,
}

#[derive(Args)]
struct RevokeArgs {
    /// Directory holding the CA (from `certs init`).
    #[arg(long)]
    dir: PathBuf,
    /// Client id whose certificate to revoke.
    #[arg(long)]
    id: String,
    /// Revoke only the certificate with this serial (hex, as `certs list` shows it), e.g. the
    /// old one once the agency runs on its renewal. Without it, every certificate of ID.
    #[arg(long, value_name = "S")]
    serial: Option<String>,
}

#[derive(Args)]
struct SignArgs {
    /// Directory holding the CA (from `certs init`).
    #[arg(long)]
    dir: PathBuf,
    /// The agency's PKCS#10 CSR (PEM), ECDSA P-256 or RSA ≥ 2048, with CN = ID.
    #[arg(long, value_name = "FILE")]
    csr: PathBuf,
    /// Client id: must equal the CSR's CN.
    #[arg(long)]
    id: String,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = pki::DEFAULT_DAYS)]
    days: u32,
}

#[derive(Args)]
struct ListArgs {
    /// Directory holding the CA (from `certs init`).
    #[arg(long)]
    dir: PathBuf,
    /// Only the certificates of this client id.
    #[arg(long)]
    id: Option<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `popgate certs …`.
pub fn run(args: CertsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CertsCommand::Init(a) => init(a),
        CertsCommand::Issue(a) => issue(a),
        CertsCommand::Revoke(a) => revoke(a),
        CertsCommand::Sign(a) => sign(a),
        CertsCommand::List(a) => list(a),
        CertsCommand::AuditKey(a) => audit_key(a),
    }
    .map(|()| ExitCode::SUCCESS)
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let hosts: Vec<&str> = args.hosts.iter().map(String::as_str).collect();
    let files = pki::init_with_hosts(&args.dir, &hosts)?;
    println!("created a dev CA in {}:", args.dir.display());
    let width = files
        .iter()
        .map(|p| p.display().to_string().len())
        .max()
        .unwrap_or(0);
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let about = match name {
            pki::CA_KEY_FILE => {
                "CA private key (mode 0600): keep it secret, never commit it".to_owned()
            }
            pki::CA_CERT_FILE => {
                "CA certificate: [tls].client_ca, and give it to every client".to_owned()
            }
            pki::SERVER_KEY_FILE => "server private key (mode 0600): [tls].key".to_owned(),
            pki::SERVER_CERT_FILE => {
                format!("server certificate for {}: [tls].cert", hosts.join(", "))
            }
            pki::CRL_FILE => "revocation list, empty for now: [tls].crl".to_owned(),
            signing_key::AUDIT_KEY_FILE => {
                "Ed25519 key that signs audit checkpoints (mode 0600)".to_owned()
            }
            signing_key::AUDIT_PUB_FILE => {
                "its public key, hex: give it to whoever checks the audit log".to_owned()
            }
            pki::INDEX_FILE => {
                "record of issued and revoked certificates: keep it with the CA".to_owned()
            }
            _ => String::new(),
        };
        println!("  {:width$}  {about}", path.display());
    }
    println!(
        "next: issue a client certificate with `popgate certs issue --dir {} --id viettel`",
        args.dir.display()
    );
    Ok(())
}

fn audit_key(args: AuditKeyArgs) -> anyhow::Result<()> {
    let (key, public) = signing_key::new_audit_key(&args.out)?;
    println!(
        "  {}  Ed25519 key that signs audit checkpoints (mode 0600)",
        key.display()
    );
    println!(
        "  {}  its public key, hex: give it to whoever checks the audit log",
        public.display()
    );
    println!(
        "next: set [audit] signing_key = {:?} and restart; verify with every key in use since the log began,          oldest first: `popgate audit verify --pubkey OLD.pub --pubkey {}`",
        key.display().to_string(),
        public.display()
    );
    Ok(())
}

fn issue(args: IssueArgs) -> anyhow::Result<()> {
    let issued = pki::issue(&args.dir, &args.id, args.days)?;
    print_issued(&args.dir, &issued);
    if let Some(key) = &issued.key_path {
        let config = if issued.still_valid.is_empty() {
            format!(
                "add a [[clients]] entry with id = {:?} to the config, and",
                issued.id
            )
        } else {
            "the config needs no change;".to_owned()
        };
        println!(
            "next: {config} call with --cert {} --key {} --ca {}",
            issued.cert_path.display(),
            key.display(),
            args.dir.join(pki::CA_CERT_FILE).display()
        );
    }
    print_renewal(&args.dir, &issued);
    Ok(())
}

fn sign(args: SignArgs) -> anyhow::Result<()> {
    let csr = std::fs::read_to_string(&args.csr)
        .with_context(|| format!("cannot read the CSR {}", args.csr.display()))?;
    let issued = pki::sign_csr(&args.dir, &csr, &args.id, args.days)?;
    print_issued(&args.dir, &issued);
    let config = if issued.still_valid.is_empty() {
        format!(
            ", and add a [[clients]] entry with id = {:?} to the config",
            issued.id
        )
    } else {
        "; the config needs no change".to_owned()
    };
    println!(
        "next: send {} and {} to the agency (its private key never leaves it){config}",
        issued.cert_path.display(),
        args.dir.join(pki::CA_CERT_FILE).display(),
    );
    print_renewal(&args.dir, &issued);
    Ok(())
}

fn print_issued(dir: &Path, issued: &pki::Issued) {
    println!(
        "issued a client certificate for {:?} from the CA in {}: serial {}, valid until {}",
        issued.id,
        dir.display(),
        issued.serial,
        pki::rfc3339(issued.not_after)
    );
    println!("  {}  certificate", issued.cert_path.display());
    if let Some(key) = &issued.key_path {
        println!(
            "  {}  private key (mode 0600): give it only to {}",
            key.display(),
            issued.id
        );
    }
}

/// For a renewal: the certificate it replaces keeps working, and how to retire it.
fn print_renewal(dir: &Path, issued: &pki::Issued) {
    for old in &issued.still_valid {
        println!(
            "then: serial {} (valid until {}) keeps working beside the new one; once {:?} runs on \
             the new certificate, revoke it with `popgate certs revoke --dir {} --id {} --serial {}` \
             and reload the gateway with the new ca.crl",
            old.serial,
            pki::rfc3339(old.not_after),
            issued.id,
            dir.display(),
            issued.id,
            old.serial
        );
    }
}

/// `--serial` as the CA writes serials: hex digits, the colons of `openssl x509 -text` allowed.
fn parse_serial(text: &str, dir: &Path, id: &str) -> anyhow::Result<pki::Serial> {
    text.replace(':', "").parse().map_err(|_| {
        anyhow::anyhow!(
            "--serial {text:?} is not a certificate serial: give its hex digits as \
             `popgate certs list --dir {} --id {id}` shows them",
            dir.display()
        )
    })
}

fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let serial = args
        .serial
        .as_deref()
        .map(|s| parse_serial(s, &args.dir, &args.id))
        .transpose()?;
    let done = match &serial {
        Some(serial) => pki::revoke_serial(&args.dir, &args.id, serial)?,
        None => pki::revoke(&args.dir, &args.id)?,
    };
    let serials: Vec<String> = done.serials.iter().map(ToString::to_string).collect();
    match (&serial, done.already_revoked) {
        (Some(serial), true) => println!(
            "serial {serial} of {:?} was revoked already; rewrote the CRL anyway",
            done.id
        ),
        (None, true) => println!(
            "{:?} had no certificate left to revoke; rewrote the CRL anyway",
            done.id
        ),
        (_, false) => println!(
            "revoked {} certificate{} of {:?}: serial {}",
            serials.len(),
            if serials.len() == 1 { "" } else { "s" },
            done.id,
            serials.join(", ")
        ),
    }
    if done.still_valid.is_empty() {
        println!("  {:?} has no valid certificate left", done.id);
    } else {
        for c in &done.still_valid {
            println!(
                "  {:?} keeps serial {}, valid until {}",
                done.id,
                c.serial,
                pki::rfc3339(c.not_after)
            );
        }
    }
    println!(
        "  {}  revocation list, {} revoked certificate(s)",
        done.crl_path.display(),
        done.crl_entries
    );
    println!(
        "next: make sure [tls].crl points at {} and reload the gateway (SIGHUP, e.g. systemctl reload popgate) so it reads the new list",
        done.crl_path.display()
    );
    Ok(())
}

fn list(args: ListArgs) -> anyhow::Result<()> {
    if let Some(id) = &args.id {
        pki::validate_client_id(id)?;
    }
    let mut entries = pki::list(&args.dir)?;
    if let Some(id) = &args.id {
        entries.retain(|e| e.id == *id);
    }
    let now = OffsetDateTime::now_utc();
    if args.json {
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.id,
                    "serial": e.serial.to_string(),
                    "not_before": pki::rfc3339(e.not_before),
                    "not_after": pki::rfc3339(e.not_after),
                    "revoked_at": e.revoked_at.map(pki::rfc3339),
                    "state": e.state(now).as_str(),
                    "source": if e.from_csr { "csr" } else { "issued" },
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!(
            "no client certificates{} in {}; issue one with `popgate certs issue --dir {} --id {}`",
            args.id
                .as_deref()
                .map(|id| format!(" of {id:?}"))
                .unwrap_or_default(),
            args.dir.display(),
            args.dir.display(),
            args.id.as_deref().unwrap_or("ID")
        );
        return Ok(());
    }
    let id_width = entries.iter().map(|e| e.id.len()).max().unwrap_or(0).max(2);
    let serial_width = entries
        .iter()
        .map(|e| e.serial.to_string().len())
        .max()
        .unwrap_or(0)
        .max(6);
    println!(
        "{:id_width$}  {:serial_width$}  {:20}  {:13}  SOURCE",
        "ID", "SERIAL", "NOT AFTER", "STATE"
    );
    for e in &entries {
        println!(
            "{:id_width$}  {:serial_width$}  {:20}  {:13}  {}",
            e.id,
            e.serial.to_string(),
            pki::rfc3339(e.not_after),
            e.state(now).as_str(),
            if e.from_csr { "csr" } else { "issued" },
        );
    }
    Ok(())
}
