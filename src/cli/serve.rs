//! `popgate serve --config FILE` and `popgate serve --dev [--dir DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::config::Config;
use crate::server::Server;

#[derive(Args)]
pub struct ServeArgs {
    /// The configuration file (TOML, see CONTRACT §3).
    #[arg(long, required_unless_present = "dev", conflicts_with = "dev")]
    config: Option<PathBuf>,
    /// Create (first run) or reuse a ready development setup in --dir and serve it.
    #[arg(long)]
    dev: bool,
    /// The development directory for --dev.
    #[arg(long, default_value = "popgate-dev", requires = "dev")]
    dir: PathBuf,
    /// With --dev: a local cluster instead, over a throwaway PostgreSQL 15 in DIR/cluster
    /// (apt-get install postgresql-15), nodes on 7443, 7444, …
    #[arg(long, requires = "dev")]
    cluster: bool,
    /// With --cluster: how many nodes.
    #[arg(long, default_value_t = 3, requires = "cluster")]
    nodes: usize,
    /// Log format: readable text, or JSON lines for collectors. RUST_LOG filters.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Starts tracing: RUST_LOG filters (default `info`), text or JSON on stderr.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    if args.cluster {
        return super::dev_cluster::run(&args.dir, args.nodes);
    }
    let config_path = match &args.config {
        Some(p) => p.clone(),
        None => super::dev::prepare(&args.dir)?,
    };
    let config = Config::load(&config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listen = config.server.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("server.listen: cannot listen on {listen}"))?;
        // With port 0 the kernel picks one: report the real address (tests read this line).
        let bound = listener.local_addr().unwrap_or(listen);
        let metrics_listen = config.server.metrics_listen;
        let console_listen = config.console.as_ref().map(|c| c.listen);
        let mut server = Server::build(config).await?;
        if let Some(addr) = metrics_listen {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("server.metrics_listen: cannot listen on {addr}"))?;
            server = server.with_metrics_listener(l);
        }
        if let Some(addr) = console_listen {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("console.listen: cannot listen on {addr}"))?;
            let bound = l.local_addr().unwrap_or(addr);
            tracing::info!(console = %bound, "audit console serving");
            server = server.with_console_listener(l);
        }
        let records = server.gateway().records().await?;
        tracing::info!(listen = %bound, records, "popgate serving");
        spawn_reload_on_sighup(server.reloader(config_path));
        if args.dev {
            super::dev::print_next_steps(&args.dir, listen);
        }
        server.serve(listener, shutdown_signal()).await?;
        tracing::info!("popgate stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Reloads the configuration on SIGHUP; a refused reload is logged and changes nothing.
fn spawn_reload_on_sighup(reloader: crate::server::Reloader) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: reload is unavailable");
            return;
        };
        while hup.recv().await.is_some() {
            let r = reloader.clone();
            match tokio::task::spawn_blocking(move || r.reload()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "reload refused; the running configuration stays")
                }
                Err(e) => tracing::error!(error = %e, "reload task failed"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = reloader;
}

/// Completes on SIGINT or SIGTERM; also how `popgate-bench --serve` stops.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing calls in flight");
}
