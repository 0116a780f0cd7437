//! `popgate lookup`, `popgate verify` and `popgate watch`: a command-line agency client that
//! prints JSON (watch: one JSON line per event, for as long as the stream lasts).
//!
//! Exit codes: 0 the call succeeded (and, for verify, matched); 1 the gateway refused the
//! call, the claims did not match, or a watch ended with an error; 2 bad usage or unreadable
//! certificates.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::render;
use crate::config::Config;
use crate::grpc::client::{ClientTls, Refusal, connect};
use crate::pb;
use crate::pb::identity_gateway_client::IdentityGatewayClient;

#[derive(Args)]
pub struct ConnectArgs {
    /// The gateway, host:port (default 127.0.0.1:7443, or the dev config's listen address).
    #[arg(long)]
    addr: Option<String>,
    /// The CA certificate that signed the gateway's certificate (PEM).
    #[arg(long, required_unless_present = "dev")]
    ca: Option<PathBuf>,
    /// This client's certificate (PEM).
    #[arg(long, required_unless_present = "dev")]
    cert: Option<PathBuf>,
    /// This client's private key (PEM).
    #[arg(long, required_unless_present = "dev")]
    key: Option<PathBuf>,
    /// Use the certificates and config of the dev directory made by `serve --dev`.
    #[arg(long, conflicts_with_all = ["ca", "cert", "key"])]
    dev: bool,
    /// The dev directory.
    #[arg(long, default_value = "popgate-dev")]
    dir: PathBuf,
    /// With --dev: the client id to act as (its certificate in DIR/certs).
    #[arg(long = "as")]
    as_id: Option<String>,
    /// The name the gateway's certificate must carry.
    #[arg(long, default_value = "localhost")]
    server_name: String,
}

/// Where to connect, as whom, and the purpose the dev config gives that client.
struct Target {
    addr: String,
    tls: ClientTls,
    default_purpose: Option<String>,
}

impl ConnectArgs {
    fn target(&self, default_as: &str) -> anyhow::Result<Target> {
        if !self.dev {
            let (Some(ca), Some(cert), Some(key)) = (&self.ca, &self.cert, &self.key) else {
                bail!("give --ca, --cert and --key, or --dev");
            };
            return Ok(Target {
                addr: self.addr.clone().unwrap_or_else(|| "127.0.0.1:7443".into()),
                tls: ClientTls::from_files(ca, cert, key)?,
                default_purpose: None,
            });
        }
        let id = self.as_id.as_deref().unwrap_or(default_as);
        let config_path = self.dir.join("popgate.toml");
        let config = Config::load(&config_path).with_context(|| {
            format!(
                "--dev: no usable dev setup in {} (run `popgate serve --dev --dir {}` first)",
                self.dir.display(),
                self.dir.display()
            )
        })?;
        let client = config
            .clients
            .iter()
            .find(|c| c.id == id)
            .with_context(|| {
                let ids: Vec<_> = config.clients.iter().map(|c| c.id.as_str()).collect();
                format!(
                    "--as {id}: not a client of the dev setup; one of: {}",
                    ids.join(", ")
                )
            })?;
        let certs = self.dir.join("certs");
        Ok(Target {
            addr: self
                .addr
                .clone()
                .unwrap_or_else(|| config.server.listen.to_string()),
            tls: ClientTls::from_files(
                &certs.join("ca.pem"),
                &certs.join(format!("{id}.pem")),
                &certs.join(format!("{id}.key")),
            )?,
            default_purpose: client.purposes.first().cloned(),
        })
    }
}

#[derive(Args)]
pub struct LookupArgs {
    /// The citizen's 12-digit id.
    citizen_id: String,
    /// Fields to read, comma separated (default: every field this client may read).
    #[arg(long, value_delimiter = ',')]
    fields: Vec<String>,
    /// The purpose of this lookup (default with --dev: the client's first purpose).
    #[arg(long)]
    purpose: Option<String>,
    /// Your transaction id, echoed and audited.
    #[arg(long, default_value = "")]
    request_id: String,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum SexArg {
    Male,
    Female,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The citizen's 12-digit id.
    citizen_id: String,
    /// Claimed full name.
    #[arg(long)]
    name: Option<String>,
    /// Claimed date of birth, YYYY-MM-DD.
    #[arg(long)]
    dob: Option<String>,
    /// Claimed sex.
    #[arg(long, value_enum)]
    sex: Option<SexArg>,
    /// Claimed permanent address.
    #[arg(long)]
    address: Option<String>,
    /// LOOSE matching: also ignore diacritics ("NGUYEN VAN AN" matches "Nguyễn Văn An").
    #[arg(long)]
    loose: bool,
    /// The purpose of this verification (default with --dev: the client's first purpose).
    #[arg(long)]
    purpose: Option<String>,
    /// Your transaction id, echoed and audited.
    #[arg(long, default_value = "")]
    request_id: String,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Args)]
pub struct FollowArgs {
    /// The citizen ids, 1 to 10,000.
    #[arg(required = true)]
    citizen_ids: Vec<String>,
    /// Stop following them instead.
    #[arg(long)]
    unfollow: bool,
    /// The purpose (default with --dev: the client's first purpose).
    #[arg(long)]
    purpose: Option<String>,
    /// Your transaction id, echoed in the audit log.
    #[arg(long, default_value = "")]
    request_id: String,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Args)]
pub struct WatchArgs {
    /// Deliver changes after this seq (the last one you kept); 0 = from now on.
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// Values each event carries, comma separated, within this client's read rights
    /// (default: none; the event still names the fields that changed).
    #[arg(long, value_delimiter = ',')]
    fields: Vec<String>,
    /// The purpose (default with --dev: the client's first purpose).
    #[arg(long)]
    purpose: Option<String>,
    /// Your transaction id, echoed and audited with every event.
    #[arg(long, default_value = "")]
    request_id: String,
    #[command(flatten)]
    connect: ConnectArgs,
}

fn purpose(given: Option<String>, target: &Target) -> anyhow::Result<String> {
    given
        .or_else(|| target.default_purpose.clone())
        .context("--purpose is required")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Prints a unary call's answer as JSON (`render` gives it and the exit code), or its refusal.
fn print_answer<T>(
    answer: Result<tonic::Response<T>, tonic::Status>,
    render: impl FnOnce(T) -> (serde_json::Value, ExitCode),
) -> ExitCode {
    match answer {
        Ok(resp) => {
            let (out, code) = render(resp.into_inner());
            println!("{out:#}");
            code
        }
        Err(status) => refused(&Refusal::from(&status)),
    }
}

/// Prints a refused call as JSON and returns exit code 1.
fn refused(status: &Refusal) -> ExitCode {
    let mut out = json!({"error": {"code": status.code, "message": status.message}});
    if let Some(ms) = &status.retry_after_ms {
        out["error"]["retry_after_ms"] = json!(ms);
    }
    println!("{out:#}");
    ExitCode::from(1)
}

pub fn lookup(args: LookupArgs) -> anyhow::Result<ExitCode> {
    let target = args.connect.target("moh")?;
    let purpose = purpose(args.purpose, &target)?;
    runtime()?.block_on(async {
        let channel = connect(&target.addr, &args.connect.server_name, &target.tls).await?;
        let req = pb::LookupRequest {
            citizen_id: args.citizen_id,
            read_mask: (!args.fields.is_empty())
                .then_some(prost_types::FieldMask { paths: args.fields }),
            purpose,
            request_id: args.request_id,
        };
        let answer = IdentityGatewayClient::new(channel).lookup(req).await;
        Ok(print_answer(answer, |r| {
            let out = json!({
                "citizen": r.citizen.as_ref().map(render::citizen),
                "reused": r.reused,
                "audit_seq": r.audit_seq,
                "request_id": r.request_id,
            });
            (out, ExitCode::SUCCESS)
        }))
    })
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let target = args.connect.target("viettel")?;
    let purpose = purpose(args.purpose, &target)?;
    let claims = pb::Claims {
        full_name: args.name,
        date_of_birth: args.dob,
        sex: args.sex.map(|s| match s {
            SexArg::Male => pb::Sex::Male as i32,
            SexArg::Female => pb::Sex::Female as i32,
        }),
        permanent_address: args.address,
    };
    runtime()?.block_on(async {
        let channel = connect(&target.addr, &args.connect.server_name, &target.tls).await?;
        let req = pb::VerifyRequest {
            citizen_id: args.citizen_id,
            claims: Some(claims),
            purpose,
            request_id: args.request_id,
            mode: if args.loose {
                pb::MatchMode::Loose
            } else {
                pb::MatchMode::Exact
            } as i32,
        };
        let answer = IdentityGatewayClient::new(channel).verify(req).await;
        Ok(print_answer(answer, |r| {
            let fields: Vec<_> = r
                .fields
                .iter()
                .map(|f| json!({"field": f.field, "matched": f.matched}))
                .collect();
            let out = json!({
                "matched": r.matched,
                "fields": fields,
                "deceased": r.deceased,
                "reused": r.reused,
                "audit_seq": r.audit_seq,
                "request_id": r.request_id,
            });
            let code = if r.matched {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
            (out, code)
        }))
    })
}

/// One change event as a JSON line: a change, or a progress event (`"progress": true`).
fn event_json(e: &pb::ChangeEvent) -> serde_json::Value {
    match &e.citizen {
        Some(c) => json!({
            "seq": e.seq,
            "citizen": render::citizen(c),
            "changed_fields": e.changed_fields,
            "audit_seq": e.audit_seq,
        }),
        None => json!({"seq": e.seq, "progress": true}),
    }
}

pub fn follow(args: FollowArgs) -> anyhow::Result<ExitCode> {
    let target = args.connect.target("moh")?;
    let purpose = purpose(args.purpose, &target)?;
    runtime()?.block_on(async {
        let channel = connect(&target.addr, &args.connect.server_name, &target.tls).await?;
        let req = pb::FollowRequest {
            citizen_ids: args.citizen_ids,
            purpose,
            request_id: args.request_id,
        };
        let mut client = IdentityGatewayClient::new(channel);
        let answer = if args.unfollow {
            client.unfollow(req).await
        } else {
            client.follow(req).await
        };
        Ok(print_answer(answer, |r| {
            let out = json!({
                "changed": r.changed,
                "following": r.following,
                "not_found": r.not_found,
                "audit_seq": r.audit_seq,
            });
            (out, ExitCode::SUCCESS)
        }))
    })
}

pub fn watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let target = args.connect.target("moh")?;
    let purpose = purpose(args.purpose, &target)?;
    runtime()?.block_on(async {
        let channel = connect(&target.addr, &args.connect.server_name, &target.tls).await?;
        let req = pb::WatchChangesRequest {
            after_seq: args.after,
            read_mask: (!args.fields.is_empty())
                .then_some(prost_types::FieldMask { paths: args.fields }),
            purpose,
            request_id: args.request_id,
        };
        let mut stream = match IdentityGatewayClient::new(channel).watch_changes(req).await {
            Ok(s) => s.into_inner(),
            Err(status) => return Ok(refused(&Refusal::from(&status))),
        };
        let mut out = std::io::stdout().lock();
        loop {
            match stream.message().await {
                Ok(Some(e)) => {
                    // A line per event, flushed at once: a pipe reader sees each as it comes.
                    writeln!(out, "{}", event_json(&e)).context("writing to stdout")?;
                    out.flush().context("writing to stdout")?;
                }
                Ok(None) => return Ok(ExitCode::SUCCESS),
                Err(status) => {
                    let r = Refusal::from(&status);
                    let line = json!({"error": {"code": r.code, "message": r.message}});
                    writeln!(out, "{line}").context("writing to stdout")?;
                    return Ok(ExitCode::from(1));
                }
            }
        }
    })
}
