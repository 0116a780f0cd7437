//! `popgate check-config --config FILE`: validates everything `serve` would, without serving:
//! the file and its keys, that the certificate files parse and the key fits the certificate,
//! the CRL, the clients. Exit 0 when usable, 2 with the key and the reason when not.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::Config;
use crate::identity;

#[derive(Args)]
pub struct CheckConfigArgs {
    /// The configuration file to check.
    #[arg(long)]
    config: PathBuf,
}

pub fn run(args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    identity::load(&config.tls)?;
    if let Some(key) = &config.audit.signing_key {
        crate::audit::checkpoint::Signer::from_pem_file(key)?;
    }
    let console = config
        .console
        .as_ref()
        .map(|c| format!("; console {}", c.listen))
        .unwrap_or_default();
    println!(
        "{}: ok ({} clients; listen {}{console})",
        args.config.display(),
        config.clients.len(),
        config.server.listen
    );
    Ok(ExitCode::SUCCESS)
}
