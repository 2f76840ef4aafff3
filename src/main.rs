//! `roost`: run one node. With no arguments: a standalone node on client port 2181,
//! HTTP port 8080, data in ./data. `roost --config zoo.cfg` reads a ZooKeeper config.

use clap::Parser;
use tracing_subscriber::EnvFilter;

use roost::config::{Cli, Config, Tool};
use roost::node::Node;

fn main() -> std::process::ExitCode {
    let mut cli = Cli::parse();
    match cli.tool.take() {
        Some(Tool::Backup(args)) => return roost::backup::backup_cmd::run(args),
        Some(Tool::Restore(args)) => return roost::backup::restore_cmd::run(args),
        None => {}
    }
    let filter =
        EnvFilter::try_new(cli.log.clone().unwrap_or_else(|| "info".into())).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: logs written to files stay greppable text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();

    let env = |k: &str| std::env::var(k).ok();
    let config = match Config::load(cli, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("roost: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roost: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let node = match Node::start(config).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("roost: {}", error_chain(&e));
                return std::process::ExitCode::from(1);
            }
        };
        tracing::info!(addr = %node.client_addr, "roost is serving");
        wait_for_signal().await;
        tracing::info!("shutting down");
        node.shutdown().await;
        std::process::ExitCode::SUCCESS
    })
}

/// An error with all of its causes, so a refusal to start names the file and the fault.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
