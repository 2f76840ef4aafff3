//! `roost restore`: installs a backup, online through a running server (`/commands/restore`)
//! or offline into a fresh data directory (see [`super::seed`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::http_client::{self, Server};
use super::seed::{self, SeedError};
use super::{human_bytes, Progress};

/// Arguments of `roost restore`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Restore a backup: online into a running ensemble, or offline into a fresh data directory",
    long_about = "Restores a backup written by `roost backup` (or /commands/snapshot).\n\n\
                  Online (--server): the file is checked whole here, then sent to /commands/restore; the \
                  server checks it again and installs it through the replicated log, so every member of the \
                  ensemble ends with the same tree. Needs ALL permissions on / (--auth).\n\n\
                  Offline (--to): the file is checked and written into a fresh data directory as a pending \
                  restore; the server started on that directory installs it through the log before it \
                  accepts clients. Seed every member of a new ensemble with the same file.\n\n\
                  A damaged or foreign file is refused and nothing is changed. See docs/BACKUP.md."
)]
pub struct RestoreArgs {
    /// The backup file.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Online: the HTTP port of a running member, e.g. http://zk1:8080.
    #[arg(long, value_name = "URL", conflicts_with = "to", required_unless_present = "to")]
    pub server: Option<String>,
    /// Online: ZooKeeper AdminServer credentials for the Authorization header: `digest user:password`,
    /// `ip` or `x509`.
    #[arg(long, env = "ROOST_AUTH", value_name = "SCHEME [CREDENTIAL]", hide_env_values = true, requires = "server")]
    pub auth: Option<String>,
    /// Offline: the fresh data directory (zoo.cfg dataDir) of a server that has not started yet.
    #[arg(long, value_name = "DATA_DIR")]
    pub to: Option<PathBuf>,
    /// Offline: the server's dataLogDir, when it is not the data directory.
    #[arg(long, value_name = "DIR", requires = "to")]
    pub data_log_dir: Option<PathBuf>,
}

/// Why a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreCmdError {
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error(transparent)]
    Http(#[from] http_client::ClientError),
    #[error("the server refused the restore (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
}

/// Runs `roost restore`.
pub fn run(args: RestoreArgs) -> ExitCode {
    let result = match (&args.server, &args.to) {
        (Some(server), _) => online(&args, server),
        (None, Some(data_dir)) => offline(&args, data_dir),
        (None, None) => unreachable_by_clap(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roost restore: {e}");
            ExitCode::from(1)
        }
    }
}

/// clap requires `--server` or `--to`; kept as an error rather than a panic all the same.
fn unreachable_by_clap() -> Result<(), RestoreCmdError> {
    Err(RestoreCmdError::Refused { status: 0, message: "give --server URL or --to DATA_DIR".into() })
}

fn offline(args: &RestoreArgs, data_dir: &std::path::Path) -> Result<(), RestoreCmdError> {
    let log_dir = args.data_log_dir.clone().unwrap_or_else(|| data_dir.to_path_buf());
    eprintln!("restore: checking {}", args.from.display());
    let info = seed::write_seed(&args.from, data_dir, &log_dir)?;
    eprintln!(
        "restore: backup of zxid 0x{:x} ({} znodes, {} sessions) is pending in {}; the server started on \
         this directory installs it through the log before it accepts clients",
        info.last_zxid,
        info.nodes,
        info.sessions,
        data_dir.join(seed::SEED_FILE).display()
    );
    Ok(())
}

fn online(args: &RestoreArgs, url: &str) -> Result<(), RestoreCmdError> {
    let server = Server::parse(url)?;
    let file = args.from.display().to_string();
    // Checked here first, so a damaged file is never sent.
    let (bytes, info) = seed::read_backup(&args.from)?;
    eprintln!(
        "restore: {file} holds zxid 0x{:x}, {} znodes, {} sessions ({}); sending it to {}",
        info.last_zxid,
        info.nodes,
        info.sessions,
        human_bytes(bytes.len() as u64),
        server.authority()
    );
    let len = bytes.len() as u64;
    let mut reader = std::io::Cursor::new(bytes);
    let mut progress = Progress::new("restore: sent", Some(len));
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/octet-stream")];
    headers.extend(args.auth.iter().map(|a| ("Authorization", a.as_str())));
    let response = {
        let mut report = |sent| progress.update(sent);
        let body = http_client::Body { len, reader: &mut reader, progress: &mut report };
        http_client::send(&server, "POST", "/commands/restore", &headers, Some(body))?
    };
    progress.finish(len);
    eprintln!("restore: the server is installing it through the log");
    let status = response.status;
    let text = response.text(64 * 1024)?;
    if status != 200 {
        return Err(RestoreCmdError::Refused { status, message: text });
    }
    eprintln!("restore: done: {text}");
    Ok(())
}
