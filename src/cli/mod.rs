//! The `popgate` command line: one file per subcommand, each with its clap arguments and a
//! `run` function. Errors end in one line on stderr and exit code 2 (bad usage or
//! configuration); a check that fails returns exit code 1 from its `run`.

mod audit;
mod audit_export;
mod bench;
mod certs;
mod check_config;
mod client;
mod db;
mod dev;
pub mod dev_cluster;
mod render;
mod seed;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// For `popgate-bench --serve`, which stops as `popgate serve` does.
pub use serve::shutdown_signal;

#[derive(Parser)]
#[command(
    name = "popgate",
    version,
    about = "Identity gateway to the national population database"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(serve::ServeArgs),
    /// Check a configuration file as `serve` would, without serving.
    CheckConfig(check_config::CheckConfigArgs),
    /// Look up a citizen (an agency client; prints JSON).
    Lookup(client::LookupArgs),
    /// Verify claims about a citizen (an agency client; prints JSON).
    Verify(client::VerifyArgs),
    /// Follow citizens (or, with --unfollow, stop), so that `watch` carries their changes.
    Follow(client::FollowArgs),
    /// Watch the changes to the citizens this client follows (prints one JSON line per event).
    Watch(client::WatchArgs),
    /// Dev CA, server and client certificates, CRL, agency CSR signing.
    Certs(certs::CertsArgs),
    /// Write N synthetic citizens into a population store (deterministic for a seed).
    Seed(seed::SeedArgs),
    /// The load generator, its own binary now: runs `popgate-bench` with these arguments.
    Bench(bench::BenchArgs),
    /// Review and check the audit log.
    Audit(audit::AuditArgs),
    /// The PostgreSQL store's schema.
    Db(db::DbArgs),
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::Lookup(args) => client::lookup(args),
        Command::Verify(args) => client::verify(args),
        Command::Follow(args) => client::follow(args),
        Command::Watch(args) => client::watch(args),
        Command::Certs(args) => certs::run(args),
        Command::Seed(args) => seed::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Db(args) => db::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            let line = format!("{err:#}").replace('\n', " ");
            eprintln!("popgate: {line}");
            ExitCode::from(2)
        }
    }
}
