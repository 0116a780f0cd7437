//! The `popgate` command line: one file per subcommand, each with its clap arguments and a
//! `run` function. Errors end in one line on stderr and exit code 2 (bad usage or
//! configuration); a check that fails returns exit code 1 from its `run`.

pub mod audit;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "popgate", version, about = "Identity gateway to the national population database")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Review and check the audit log.
    Audit(audit::AuditArgs),
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Audit(args) => audit::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("popgate: {err:#}");
            ExitCode::from(2)
        }
    }
}
