//! `roost import-zookeeper`: build a Roost data directory from Apache ZooKeeper's.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::migrate::import::{import, ImportPlan};

/// Import Apache ZooKeeper's data directory: reads its newest snapshot (plain, gz or snappy),
/// replays the transaction logs after it (verifying every checksum) and writes a Roost data
/// directory with the same znodes, stats, ACLs, sessions and last zxid. Stop ZooKeeper first;
/// start Roost on the result. For an ensemble, import on one member (give its zoo.cfg) and
/// start the others empty: they catch up from it.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// ZooKeeper's dataDir (the directory holding version-2/ with the snapshots).
    #[arg(long, value_name = "ZK_DATA_DIR")]
    from: PathBuf,
    /// ZooKeeper's dataLogDir, if its transaction logs are kept apart from the snapshots.
    #[arg(long, value_name = "ZK_DATA_LOG_DIR")]
    log_dir: Option<PathBuf>,
    /// The Roost server's data directory (its dataLogDir, if set). Must be empty or absent.
    /// Defaults to the directory of --config.
    #[arg(long, value_name = "ROOST_DATA_DIR")]
    to: Option<PathBuf>,
    /// The Roost server's zoo.cfg: an ensemble's members and this server's id come from it.
    #[arg(short = 'c', long, value_name = "ZOO_CFG")]
    config: Option<PathBuf>,
    /// This server's id (overrides <dataDir>/myid).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=254))]
    server_id: Option<u64>,
}

pub fn run(args: Args) -> ExitCode {
    let server = match super::server_side(args.config, args.server_id, args.to) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roost import-zookeeper: {e}");
            return ExitCode::from(2);
        }
    };
    let plan = ImportPlan {
        zk_data_dir: args.from,
        zk_log_dir: args.log_dir,
        target: server.data_log_dir,
        me: server.me,
        members: server.members,
    };
    let mut progress = super::progress_printer();
    match import(&plan, &mut progress) {
        Ok(summary) => {
            progress("done");
            for (log, offset) in &summary.load.torn_logs {
                println!(
                    "note: {} ends in a partial record at offset {offset}; ignored, as ZooKeeper does",
                    log.display()
                );
            }
            if summary.load.orphans_removed > 0 {
                println!(
                    "note: {} ephemeral nodes of sessions that had ended were dropped, as ZooKeeper does at load",
                    summary.load.orphans_removed
                );
            }
            println!(
                "imported {} znodes and {} sessions, last zxid 0x{:x}, from {} and {} log file(s) into {}",
                summary.nodes,
                summary.sessions,
                summary.last_zxid,
                summary.load.snapshot.display(),
                summary.load.logs.len(),
                plan.target.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("roost import-zookeeper: {}", super::error_chain(&e));
            ExitCode::from(1)
        }
    }
}
