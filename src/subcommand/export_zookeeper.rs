//! `roost export-zookeeper`: write a stopped Roost server's state as an Apache ZooKeeper snapshot.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::migrate::export::export;

/// Write a stopped Roost server's znodes, stats, ACLs and sessions as a ZooKeeper snapshot
/// (<to>/version-2/snapshot.<zxid>, plus acceptedEpoch and currentEpoch) that Apache ZooKeeper
/// 3.5 to 3.9 loads: the way back. Stop the server first (on an ensemble, the leader).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The Roost server's data directory (its dataLogDir, if set). Defaults to the directory of --config.
    #[arg(long, value_name = "ROOST_DATA_DIR")]
    from: Option<PathBuf>,
    /// ZooKeeper's dataDir to write into; its version-2/ must be empty or absent.
    #[arg(long, value_name = "ZK_DATA_DIR")]
    to: PathBuf,
    /// The Roost server's zoo.cfg, to find its data directory.
    #[arg(short = 'c', long, value_name = "ZOO_CFG")]
    config: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let server = match super::server_side(args.config, None, args.from) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roost export-zookeeper: {e}");
            return ExitCode::from(2);
        }
    };
    let mut progress = super::progress_printer();
    match export(&server.data_log_dir, &args.to, &mut progress) {
        Ok(summary) => {
            progress("done");
            if summary.entries_skipped > 0 {
                println!("note: {} log entries not known to be committed were left out", summary.entries_skipped);
            }
            println!(
                "exported {} znodes and {} sessions, last zxid 0x{:x}, to {}",
                summary.nodes,
                summary.sessions,
                summary.last_zxid,
                summary.snapshot.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("roost export-zookeeper: {}", super::error_chain(&e));
            ExitCode::from(1)
        }
    }
}
