//! `popgate bench`: the load generator is its own binary, `popgate-bench` (the workspace's
//! `crates/popgate-bench`), so that this one carries none of its code or dependencies. This
//! only hands the arguments over to the `popgate-bench` beside this executable.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::Args;

#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct BenchArgs {
    /// The options of `popgate-bench` (see `popgate-bench --help`), passed as they are.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the popgate executable")?;
    run_beside(&exe, &args.args)
}

/// Runs the `popgate-bench` in the directory of `exe` with `args`, and exits as it does.
fn run_beside(exe: &Path, args: &[OsString]) -> anyhow::Result<ExitCode> {
    let bench = exe.with_file_name(format!("popgate-bench{}", std::env::consts::EXE_SUFFIX));
    if !bench.is_file() {
        bail!(
            "the load generator is its own binary: run popgate-bench … (from a checkout: cargo run --release -p popgate-bench -- …)"
        );
    }
    let mut command = Command::new(&bench);
    command.args(args);
    #[cfg(unix)]
    {
        // Replaces this process: signals (Ctrl-C, SIGTERM for `--serve`) and the exit code
        // are popgate-bench's own. exec returns only if it failed.
        use std::os::unix::process::CommandExt;
        let e = command.exec();
        Err(e).with_context(|| format!("cannot run {}", bench.display()))
    }
    #[cfg(not(unix))]
    {
        let status = command
            .status()
            .with_context(|| format!("cannot run {}", bench.display()))?;
        Ok(status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .map_or(ExitCode::FAILURE, ExitCode::from))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn every_argument_is_passed_as_given() {
        let cli = crate::cli::Cli::try_parse_from([
            "popgate", "bench", "--dev", "--help", "-x", "bench", "--", "a b",
        ])
        .expect("parses");
        let crate::cli::Command::Bench(args) = cli.command else {
            panic!("not bench");
        };
        assert_eq!(args.args, ["--dev", "--help", "-x", "bench", "--", "a b"]);
    }

    #[test]
    fn without_popgate_bench_beside_it_says_how_to_run_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = run_beside(&dir.path().join("popgate"), &[]).expect_err("no popgate-bench");
        let line = format!("{err:#}");
        assert!(line.contains("its own binary: run popgate-bench"), "{line}");
        assert!(
            line.contains("cargo run --release -p popgate-bench --"),
            "{line}"
        );
    }
}
