//! The environment variables of the official `zookeeper` Docker image.
//!
//! The image's entrypoint turns `ZOO_*` variables into a zoo.cfg (when none is mounted) and writes
//! `ZOO_MY_ID` into `<dataDir>/myid` (when that file does not exist). Roost reads the same variables
//! directly, as the lowest-precedence configuration layer, so the image's compose files work unchanged.
//! Empty variables count as unset, as in the entrypoint's `-z` tests.
//!
//! The environment is passed in as a function so tests never touch the process environment.

use super::error::{ConfigError, Origin, ValueProblem};
use super::settings::RawEntry;

/// Variables that map one-to-one onto a zoo.cfg key. `ZOO_PORT` is from the 3.4-era images.
const SIMPLE_VARS: &[(&str, &str)] = &[
    ("ZOO_PORT", "clientPort"),
    ("ZOO_TICK_TIME", "tickTime"),
    ("ZOO_INIT_LIMIT", "initLimit"),
    ("ZOO_SYNC_LIMIT", "syncLimit"),
    ("ZOO_4LW_COMMANDS_WHITELIST", "4lw.commands.whitelist"),
    ("ZOO_MAX_CLIENT_CNXNS", "maxClientCnxns"),
    ("ZOO_STANDALONE_ENABLED", "standaloneEnabled"),
    ("ZOO_ADMINSERVER_ENABLED", "admin.enableServer"),
    ("ZOO_DATA_DIR", "dataDir"),
    ("ZOO_DATA_LOG_DIR", "dataLogDir"),
    ("ZOO_AUTOPURGE_PURGEINTERVAL", "autopurge.purgeInterval"),
    ("ZOO_AUTOPURGE_SNAPRETAINCOUNT", "autopurge.snapRetainCount"),
    // Roost's own: how the HTTP port (navigator, REST, WebSocket) is protected.
    ("ZOO_HTTP_READ_ONLY", "http.readOnly"),
    ("ZOO_HTTP_TOKEN", "http.token"),
    ("ZOO_HTTP_BASE_PATH", "http.basePath"),
    ("ZOO_HTTP_ALLOWED_HOSTS", "http.allowedHosts"),
    ("ZOO_HTTP_USERS", "http.users"),
];

/// What the Docker variables contribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerEnv {
    /// zoo.cfg-equivalent entries, in the order the entrypoint would write them.
    pub entries: Vec<RawEntry>,
    /// `ZOO_MY_ID`, unparsed (validated where the server id is resolved).
    pub my_id: Option<String>,
}

/// Reads the `ZOO_*` variables through `env`.
pub fn read(env: &dyn Fn(&str) -> Option<String>) -> Result<DockerEnv, ConfigError> {
    let get = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let mut entries: Vec<RawEntry> = SIMPLE_VARS
        .iter()
        .filter_map(|&(var, key)| get(var).map(|value| RawEntry::new(key, value, Origin::DockerEnv(var))))
        .collect();
    if let Some(servers) = get("ZOO_SERVERS") {
        entries.extend(split_pairs(&servers, "ZOO_SERVERS")?);
    }
    if let Some(extra) = get("ZOO_CFG_EXTRA") {
        entries.extend(split_pairs(&extra, "ZOO_CFG_EXTRA")?);
    }
    Ok(DockerEnv { entries, my_id: get("ZOO_MY_ID") })
}

/// Splits a whitespace-separated list of `key=value` words (how the entrypoint's `for x in $VAR`
/// loops see `ZOO_SERVERS` and `ZOO_CFG_EXTRA`).
fn split_pairs(text: &str, var: &'static str) -> Result<Vec<RawEntry>, ConfigError> {
    text.split_whitespace()
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok(RawEntry::new(key, value, Origin::DockerEnv(var))),
            _ => Err(ConfigError::BadValue {
                origin: Origin::DockerEnv(var),
                key: var.to_string(),
                value: word.to_string(),
                problem: ValueProblem::NotKeyValue,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn keys_values(d: &DockerEnv) -> Vec<(&str, &str)> {
        d.entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect()
    }

    #[test]
    fn empty_environment_contributes_nothing() {
        assert_eq!(read(&|_| None).unwrap(), DockerEnv::default());
    }

    #[test]
    fn zoo_servers_are_split_on_whitespace() {
        let env = env_of(&[(
            "ZOO_SERVERS",
            "server.1=zk1:2888:3888;2181 server.2=zk2:2888:3888;2181\n server.3=zk3:2888:3888:observer;2181",
        )]);
        let d = read(&env).unwrap();
        assert_eq!(
            keys_values(&d),
            vec![
                ("server.1", "zk1:2888:3888;2181"),
                ("server.2", "zk2:2888:3888;2181"),
                ("server.3", "zk3:2888:3888:observer;2181"),
            ]
        );
        assert!(d.entries.iter().all(|e| e.origin == Origin::DockerEnv("ZOO_SERVERS")));
    }

    #[test]
    fn simple_variables_map_to_zoo_cfg_keys() {
        let env = env_of(&[
            ("ZOO_MY_ID", "3"),
            ("ZOO_TICK_TIME", "2500"),
            ("ZOO_4LW_COMMANDS_WHITELIST", "srvr, ruok"),
            ("ZOO_STANDALONE_ENABLED", "false"),
            ("ZOO_ADMINSERVER_ENABLED", ""),
            ("ZOO_CFG_EXTRA", "snapCount=5000 reconfigEnabled=true"),
        ]);
        let d = read(&env).unwrap();
        assert_eq!(d.my_id.as_deref(), Some("3"));
        assert_eq!(
            keys_values(&d),
            vec![
                ("tickTime", "2500"),
                ("4lw.commands.whitelist", "srvr, ruok"),
                ("standaloneEnabled", "false"),
                ("snapCount", "5000"),
                ("reconfigEnabled", "true"),
            ]
        );
    }

    #[test]
    fn malformed_list_word_is_an_error_naming_the_variable() {
        let env = env_of(&[("ZOO_CFG_EXTRA", "snapCount=5 oops")]);
        let err = read(&env).unwrap_err();
        assert_eq!(err.to_string(), "environment variable ZOO_CFG_EXTRA: ZOO_CFG_EXTRA: \"oops\" is not key=value");
    }
}
