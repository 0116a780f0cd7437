//! `popgate db migrate --url URL`: creates or upgrades the PostgreSQL schema (`serve` does the
//! same at start). Exit 2 when the database's schema is newer than this binary knows.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::store::postgres::{self, DbUrl};

#[derive(Args)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Subcommand)]
enum DbCommand {
    /// Create the schema, or apply the migrations it lacks.
    Migrate {
        /// The database (`[store].url`).
        #[arg(long, value_name = "URL")]
        url: String,
    },
}

pub fn run(args: DbArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DbCommand::Migrate { url } => {
            let url = DbUrl::parse(&url).map_err(|e| anyhow::anyhow!("--url: {e}"))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let m = runtime
                .block_on(postgres::migrate(&url))
                .with_context(|| url.describe())?;
            if m.from == m.to {
                println!(
                    "{}: schema at version {}, nothing to do",
                    url.describe(),
                    m.to
                );
            } else {
                println!(
                    "{}: schema migrated from version {} to {}",
                    url.describe(),
                    m.from,
                    m.to
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
