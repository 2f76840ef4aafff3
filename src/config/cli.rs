//! Command-line flags. Every flag also reads an environment variable `ROOST_<NAME>` (clap `env`);
//! a flag given on the command line beats its variable. How the flags rank against zoo.cfg and the
//! Docker variables is described on [`Config::load`](super::Config::load).

use std::path::PathBuf;

use clap::Parser;

use super::error::Origin;
use super::settings::RawEntry;

/// A `-D key=value` property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
}

/// Why a `-D` argument was rejected (reported by clap).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected key=value, got {0:?}")]
pub struct PropertyError(String);

fn parse_property(text: &str) -> Result<Property, PropertyError> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok(Property { key: key.trim().to_string(), value: value.trim().to_string() })
        }
        _ => Err(PropertyError(text.to_string())),
    }
}

/// Roost server command line.
///
/// Without arguments Roost runs a standalone server: clients on 0.0.0.0:2181, HTTP (admin and
/// navigator) on 8080, data in `./data`, server id 1, tickTime 2000 ms.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "roost", version, about = "A ZooKeeper-compatible coordination service")]
pub struct Cli {
    /// ZooKeeper-style zoo.cfg file.
    #[arg(short = 'c', long = "config", env = "ROOST_CONFIG", value_name = "ZOO_CFG")]
    pub config: Option<PathBuf>,

    /// zoo.cfg given as the last positional argument, as `QuorumPeerMain <zoo.cfg>` takes it (lets a
    /// stand-in `java` launcher forward its arguments with little rewriting).
    #[arg(value_name = "ZOO_CFG_FILE", conflicts_with = "config")]
    pub config_positional: Option<PathBuf>,

    /// Client port (zoo.cfg `clientPort`). 0 picks a free port.
    #[arg(long, env = "ROOST_CLIENT_PORT")]
    pub client_port: Option<u16>,

    /// HTTP port for the admin API and navigator (zoo.cfg `admin.serverPort`). 0 picks a free port.
    #[arg(long, env = "ROOST_HTTP_PORT")]
    pub http_port: Option<u16>,

    /// Snapshot and state directory (zoo.cfg `dataDir`).
    #[arg(long, env = "ROOST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Log directory (zoo.cfg `dataLogDir`; defaults to the data directory).
    #[arg(long, env = "ROOST_DATA_LOG_DIR")]
    pub data_log_dir: Option<PathBuf>,

    /// This server's id (overrides `<dataDir>/myid` and `ZOO_MY_ID`), 1..=254.
    #[arg(long, env = "ROOST_SERVER_ID", value_parser = clap::value_parser!(u64).range(1..=254))]
    pub server_id: Option<u64>,

    /// Tick length in milliseconds (zoo.cfg `tickTime`).
    #[arg(long, env = "ROOST_TICK_TIME", value_parser = clap::value_parser!(u32).range(1..))]
    pub tick_time: Option<u32>,

    /// Address the client port binds to (zoo.cfg `clientPortAddress`); also the HTTP bind address
    /// unless `admin.serverAddress` is set.
    #[arg(long, env = "ROOST_BIND")]
    pub bind: Option<String>,

    /// Enabled four-letter words, comma or space separated, `*` for all
    /// (zoo.cfg `4lw.commands.whitelist`).
    #[arg(long = "four-letter-words", env = "ROOST_FOUR_LETTER_WORDS", value_name = "LIST")]
    pub four_letter_words: Option<String>,

    /// The HTTP port (navigator, REST, WebSocket) requires this token: `Authorization: Bearer`
    /// or a UI login with it (zoo.cfg `http.token`).
    #[arg(long, env = "ROOST_HTTP_TOKEN", value_name = "TOKEN")]
    pub http_token: Option<String>,

    /// Users who may log in to the HTTP port, `user:<digest>` comma-separated, in ZooKeeper's
    /// digest format (zoo.cfg `http.users`).
    #[arg(long, env = "ROOST_HTTP_USERS", value_name = "USER:DIGEST,...")]
    pub http_users: Option<String>,

    /// The HTTP port refuses every change (zoo.cfg `http.readOnly`).
    #[arg(long, env = "ROOST_HTTP_READ_ONLY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub http_read_only: Option<String>,

    /// Host names the HTTP port answers to, comma-separated (zoo.cfg `http.allowedHosts`).
    #[arg(long, env = "ROOST_HTTP_ALLOWED_HOSTS", value_name = "NAMES")]
    pub http_allowed_hosts: Option<String>,

    /// Serve the HTTP port under this path prefix (zoo.cfg `http.basePath`).
    #[arg(long, env = "ROOST_HTTP_BASE_PATH", value_name = "PATH")]
    pub http_base_path: Option<String>,

    /// Any zoo.cfg key or ZooKeeper Java system property, e.g.
    /// `-D zookeeper.DigestAuthenticationProvider.superDigest=super:xyz=` or
    /// `-Dreadonlymode.enabled=true`. Repeatable. The variable holds a single key=value.
    #[arg(short = 'D', long = "property", env = "ROOST_PROPERTY", value_name = "KEY=VALUE",
          value_parser = parse_property)]
    pub property: Vec<Property>,

    /// Log filter in `tracing` EnvFilter syntax, e.g. `info,roost::server=debug`.
    #[arg(long, env = "ROOST_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// A tool to run instead of the server.
    #[command(subcommand)]
    pub tool: Option<Tool>,
}

/// The tools `roost` runs instead of the server (each in its own module).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Tool {
    Backup(crate::backup::backup_cmd::BackupArgs),
    Restore(crate::backup::restore_cmd::RestoreArgs),
}

impl Cli {
    /// The zoo.cfg path from `--config` or the positional argument.
    pub fn config_file(&self) -> Option<&PathBuf> {
        self.config.as_ref().or(self.config_positional.as_ref())
    }

    /// The `-D` properties as a configuration layer.
    pub(crate) fn property_entries(&self) -> Vec<RawEntry> {
        self.property.iter().map(|p| RawEntry::new(p.key.clone(), p.value.clone(), Origin::Property)).collect()
    }

    /// The dedicated flags that stand for zoo.cfg keys, as a configuration layer.
    /// (`--server-id`, `--config` and `--log` are handled separately.)
    pub(crate) fn flag_entries(&self) -> Vec<RawEntry> {
        let flags: [(&'static str, &'static str, Option<String>); 12] = [
            ("--client-port", "clientPort", self.client_port.map(|v| v.to_string())),
            ("--http-port", "admin.serverPort", self.http_port.map(|v| v.to_string())),
            ("--data-dir", "dataDir", self.data_dir.as_ref().map(|p| p.display().to_string())),
            ("--data-log-dir", "dataLogDir", self.data_log_dir.as_ref().map(|p| p.display().to_string())),
            ("--tick-time", "tickTime", self.tick_time.map(|v| v.to_string())),
            ("--bind", "clientPortAddress", self.bind.clone()),
            ("--four-letter-words", "4lw.commands.whitelist", self.four_letter_words.clone()),
            ("--http-token", "http.token", self.http_token.clone()),
            ("--http-users", "http.users", self.http_users.clone()),
            ("--http-read-only", "http.readOnly", self.http_read_only.clone()),
            ("--http-allowed-hosts", "http.allowedHosts", self.http_allowed_hosts.clone()),
            ("--http-base-path", "http.basePath", self.http_base_path.clone()),
        ];
        flags
            .into_iter()
            .filter_map(|(flag, key, value)| value.map(|v| RawEntry::new(key, v, Origin::Flag(flag))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_a_roost_env_var() {
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if ["help", "version", "config_positional"].contains(&id) {
                continue;
            }
            let expected = format!("ROOST_{}", id.to_ascii_uppercase());
            let env = arg.get_env().and_then(|e| e.to_str());
            assert_eq!(env, Some(expected.as_str()), "flag {id}");
        }
    }

    #[test]
    fn java_style_properties_parse() {
        let cli = Cli::try_parse_from([
            "roost",
            "-Dreadonlymode.enabled=true",
            "-D",
            "zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
            "--property",
            "snapCount=10",
            "/tmp/zoo.cfg",
        ])
        .unwrap();
        assert_eq!(
            cli.property,
            vec![
                Property { key: "readonlymode.enabled".into(), value: "true".into() },
                Property {
                    key: "zookeeper.DigestAuthenticationProvider.superDigest".into(),
                    value: "super:D/InIHSb7yEEbrWz8b9l71RjZJU=".into()
                },
                Property { key: "snapCount".into(), value: "10".into() },
            ]
        );
        assert_eq!(cli.config_file(), Some(&PathBuf::from("/tmp/zoo.cfg")));
    }

    #[test]
    fn bad_flags_are_rejected_by_clap() {
        assert!(Cli::try_parse_from(["roost", "-D", "novalue"]).is_err());
        assert!(Cli::try_parse_from(["roost", "--client-port", "abc"]).is_err());
        assert!(Cli::try_parse_from(["roost", "--server-id", "0"]).is_err());
        assert!(Cli::try_parse_from(["roost", "--server-id", "255"]).is_err());
        assert!(Cli::try_parse_from(["roost", "--tick-time", "0"]).is_err());
        assert!(Cli::try_parse_from(["roost", "-c", "a.cfg", "b.cfg"]).is_err());
    }

    #[test]
    fn flags_become_zoo_cfg_keys() {
        let cli =
            Cli::try_parse_from(["roost", "--client-port", "3000", "--bind", "127.0.0.1", "-c", "x.cfg"]).unwrap();
        let entries = cli.flag_entries();
        assert_eq!(
            entries,
            vec![
                RawEntry::new("clientPort", "3000", Origin::Flag("--client-port")),
                RawEntry::new("clientPortAddress", "127.0.0.1", Origin::Flag("--bind")),
            ]
        );
        assert_eq!(cli.config_file(), Some(&PathBuf::from("x.cfg")));
    }
}
