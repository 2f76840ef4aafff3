//! `roost backup`: downloads a running server's snapshot (`/commands/snapshot`) into a file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::http_client::{self, Server};
use super::{human_bytes, Progress};
use crate::tree::snapshot::StreamCheck;

/// Arguments of `roost backup`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Download a backup of a running server (its whole tree as of one zxid)",
    long_about = "Downloads the whole tree of a running Roost server as of one zxid, through the \
                  AdminServer command /commands/snapshot, into FILE. The caller needs ALL permissions on / \
                  (ZooKeeper's rule): give them with --auth. The file is checked (length and checksum) as it \
                  arrives and only then moved into place; an existing FILE is replaced only by a complete \
                  backup. See docs/BACKUP.md."
)]
pub struct BackupArgs {
    /// The server's HTTP port, e.g. http://zk1:8080 (with its http.basePath, if any).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// ZooKeeper AdminServer credentials, sent as the Authorization header: `digest user:password`,
    /// `ip` or `x509`.
    #[arg(long, env = "ROOST_AUTH", value_name = "SCHEME [CREDENTIAL]", hide_env_values = true)]
    pub auth: Option<String>,
    /// The file to write.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
}

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Http(#[from] http_client::ClientError),
    #[error("the server refused the snapshot (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the download is not a complete, valid snapshot after {at} bytes: {source}; {file} was left unchanged")]
    Damaged { file: String, at: u64, source: crate::tree::snapshot::SnapshotError },
    #[error("writing {file}: {source}")]
    Write { file: String, source: std::io::Error },
}

/// Runs `roost backup`.
pub fn run(args: BackupArgs) -> ExitCode {
    match backup(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roost backup: {e}");
            ExitCode::from(1)
        }
    }
}

fn backup(args: &BackupArgs) -> Result<(), BackupError> {
    let server = Server::parse(&args.server)?;
    let headers: Vec<(&str, &str)> = args.auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let mut response = http_client::send(&server, "GET", "/commands/snapshot?streaming=true", &headers, None)?;
    if response.status != 200 {
        let status = response.status;
        return Err(BackupError::Refused { status, message: response.text(64 * 1024)? });
    }
    let zxid = response.header("last_zxid").unwrap_or("unknown").to_owned();
    let size: Option<u64> = response.header("snapshot_size").and_then(|s| s.parse().ok());
    eprintln!("backup: the server's snapshot holds zxid {zxid}, {}", size.map_or("size unknown".into(), human_bytes));

    let file = args.to.display().to_string();
    let tmp = crate::storage::atomic::with_suffix(&args.to, ".part");
    let result = download(&mut response, &server, &tmp, size, &file).and_then(|()| {
        std::fs::rename(&tmp, &args.to).map_err(|source| BackupError::Write { file: file.clone(), source })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    eprintln!("backup: zxid {zxid} written to {file}");
    Ok(())
}

/// Streams the response body into `tmp`, checking it as it comes, and syncs it to disk.
fn download(
    response: &mut http_client::Response,
    server: &Server,
    tmp: &std::path::Path,
    size: Option<u64>,
    file: &str,
) -> Result<(), BackupError> {
    let write_err = |source| BackupError::Write { file: tmp.display().to_string(), source };
    let damaged =
        |check: &StreamCheck, source| BackupError::Damaged { file: file.to_owned(), at: check.bytes_seen(), source };
    let mut out = std::io::BufWriter::new(std::fs::File::create(tmp).map_err(write_err)?);
    let mut check = StreamCheck::default();
    let mut progress = Progress::new("backup", size);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = response
            .body()
            .read(&mut buf)
            .map_err(|source| http_client::ClientError::Io { addr: server.authority(), source })?;
        if n == 0 {
            break;
        }
        check.update(&buf[..n]).map_err(|e| damaged(&check, e))?;
        out.write_all(&buf[..n]).map_err(write_err)?;
        progress.update(check.bytes_seen());
    }
    check.finish().map_err(|e| damaged(&check, e))?;
    let out = out.into_inner().map_err(|e| write_err(e.into_error()))?;
    out.sync_all().map_err(write_err)?;
    progress.finish(check.bytes_seen());
    Ok(())
}
