//! `roost <command>`: the work done beside serving (the server stays the default with no
//! command). Each command is one module with its arguments and its `run`.

mod export_zookeeper;
mod import_zookeeper;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::config::{Cli, Config};
use crate::consensus::Member;

/// The commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    ImportZookeeper(import_zookeeper::Args),
    ExportZookeeper(export_zookeeper::Args),
    Backup(crate::backup::backup_cmd::BackupArgs),
    Restore(crate::backup::restore_cmd::RestoreArgs),
}

impl Command {
    /// Runs the command; the exit code is 0 on success, 1 on failure, 2 for bad arguments.
    pub fn run(self) -> ExitCode {
        match self {
            Command::ImportZookeeper(args) => import_zookeeper::run(args),
            Command::ExportZookeeper(args) => export_zookeeper::run(args),
            Command::Backup(args) => crate::backup::backup_cmd::run(args),
            Command::Restore(args) => crate::backup::restore_cmd::run(args),
        }
    }
}

/// What a command needs to know of the Roost server whose data it reads or writes.
struct ServerSide {
    data_log_dir: PathBuf,
    me: u64,
    members: Vec<Member>,
}

/// The server's data directory, id and members from its zoo.cfg (`--config`), as the server
/// itself would read them, with `--server-id` and an explicit directory taking precedence.
fn server_side(config: Option<PathBuf>, server_id: Option<u64>, dir: Option<PathBuf>) -> Result<ServerSide, String> {
    let Some(config) = config else {
        let data_log_dir = dir.ok_or("give the Roost data directory (or --config with its zoo.cfg)")?;
        return Ok(ServerSide { data_log_dir, me: server_id.unwrap_or(1), members: Vec::new() });
    };
    let cli = Cli { config: Some(config), server_id, ..Cli::default() };
    let env = |k: &str| std::env::var(k).ok();
    let config = Config::load(cli, &env).map_err(|e| format!("configuration error: {e}"))?;
    let members = if config.is_standalone() { Vec::new() } else { crate::node::members(&config) };
    Ok(ServerSide { data_log_dir: dir.unwrap_or(config.data_log_dir.clone()), me: config.my_id, members })
}

/// Prints each step with the time since the command started, on stderr.
fn progress_printer() -> impl FnMut(&str) {
    let started = Instant::now();
    move |step: &str| eprintln!("[{:7.1}s] {step}", started.elapsed().as_secs_f64())
}

/// An error with all of its causes (each once), so a refusal names the file and the fault.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
