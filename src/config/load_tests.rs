//! Tests of [`Config::load`] across all sources (kept apart from `load.rs` to keep files short).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Parser;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("roost").chain(args.iter().copied())).unwrap()
}

/// A temp dir with `zoo.cfg` holding `text` (`{dir}` replaced by the dir path).
fn cfg_dir(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zoo.cfg");
    std::fs::write(&path, text.replace("{dir}", &dir.path().display().to_string())).unwrap();
    (dir, path)
}

fn load_file(path: &Path, extra: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let mut args = vec!["-c", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    Config::load(cli(&args), env)
}

/// The zoo.cfg kazoo's test harness writes for server 1 of 3 (ZOOKEEPER_VERSION >= 3.5).
const KAZOO_CFG: &str = "\
tickTime=2000
dataDir={dir}/data
clientPort=20000
secureClientPort=20004
maxClientCnxns=0
admin.serverPort=20003
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider
ssl.keyStore.location={dir}/keystore.jks
ssl.keyStore.password=apassword
ssl.trustStore.location={dir}/truststore.jks
ssl.trustStore.password=apassword
4lw.commands.whitelist=*
reconfigEnabled=true
localSessionsEnabled=false
localSessionsUpgradingEnabled=false
initLimit=4
syncLimit=2
server.1=localhost:20002:20001:participant
server.2=localhost:20012:20011:participant
server.3=localhost:20022:20021:participant
peerType=participant
";

fn kazoo_dir() -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = cfg_dir(KAZOO_CFG);
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/myid"), "1\n").unwrap();
    (dir, path)
}

#[test]
fn defaults_are_a_standalone_server() {
    let c = Config::load(Cli::default(), &no_env).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.client_port, 2181);
    assert_eq!(c.http_port, 8080);
    assert!(c.http_enabled);
    assert_eq!(c.bind, "0.0.0.0");
    assert_eq!(c.client_listen_addr(), "0.0.0.0:2181");
    assert_eq!(c.http_listen_addr(), "0.0.0.0:8080");
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.data_log_dir, c.data_dir);
    assert_eq!(c.my_id, 1);
    assert_eq!(c.tick_time_ms, 2000);
    assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (4000, 40000));
    assert_eq!(c.max_client_cnxns, 60);
    assert_eq!(c.max_buffer, 0xfffff);
    assert_eq!(c.snap_count, 100_000);
    assert_eq!(c.container_check_interval_ms, 60_000);
    assert_eq!(c.container_max_never_used_interval_ms, 0);
    assert!(c.four_letter_words.allows("srvr") && !c.four_letter_words.allows("ruok"));
    assert!(!c.read_only_enabled && !c.ttl_enabled && !c.reconfig_enabled);
    assert_eq!(c.super_digest, None);
    assert!(c.servers.is_empty() && c.is_standalone());
    assert!(c.warnings.is_empty());
}

#[test]
fn kazoo_harness_config_with_myid() {
    let (dir, path) = kazoo_dir();
    let c = load_file(
        &path,
        &[
            "-Dreadonlymode.enabled=true",
            "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
            "-Dzookeeper.log.dir=/tmp/logs",
            "-Dfile.encoding=UTF-8",
        ],
        &no_env,
    )
    .unwrap();
    assert_eq!(c.my_id, 1);
    assert_eq!(c.client_port, 20000);
    assert_eq!(c.http_port, 20003);
    assert_eq!(c.security.secure_client_port, Some(20004));
    let tls = &c.security.client_tls;
    let key_store = tls.key_store.as_ref().unwrap();
    assert!(key_store.location.ends_with("keystore.jks"));
    assert_eq!(key_store.password.as_ref().map(|p| p.expose()), Some("apassword"));
    assert!(!format!("{c:?}").contains("apassword"), "a password reached Debug output");
    assert!(tls.trust_store.as_ref().unwrap().location.ends_with("truststore.jks"));
    assert_eq!(tls.client_auth, None);
    assert_eq!(c.security.auth_providers, vec!["org.apache.zookeeper.server.auth.SASLAuthenticationProvider"]);
    assert_eq!(c.data_dir, dir.path().join("data"));
    assert_eq!(c.max_client_cnxns, 0);
    assert_eq!(c.max_client_cnxns_limit(), None);
    assert_eq!((c.init_limit, c.sync_limit), (4, 2));
    assert!(c.reconfig_enabled && c.read_only_enabled);
    assert!(!c.local_sessions_enabled && !c.local_sessions_upgrading_enabled);
    assert!(c.four_letter_words.allows_all() && c.four_letter_words.allows("envi"));
    assert_eq!(c.super_digest.as_deref(), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
    assert!(!c.is_standalone());
    assert_eq!(c.peer_type, PeerRole::Participant);
    let ids: Vec<u64> = c.servers.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let me = c.my_server().unwrap();
    assert_eq!((me.host.as_str(), me.quorum_port, me.election_port), ("localhost", 20002, 20001));
    assert_eq!(c.peers().count(), 2);
    // Session timeouts the kazoo tests rely on: tick 2000 gives [4000, 40000]; they ask for 15000.
    assert_eq!(c.clamp_session_timeout(15000), 15000);
    assert_eq!(c.clamp_session_timeout(1000), 4000);
    assert_eq!(c.clamp_session_timeout(100_000), 40000);

    assert!(c.warnings.is_empty(), "the harness's TLS keys and JVM-only -D properties must not warn: {:?}", c.warnings);
}

#[test]
fn conf_output_for_quorum_member() {
    let (_dir, path) = kazoo_dir();
    let c = load_file(&path, &[], &no_env).unwrap();
    let lines = c.to_conf_lines(100, 200);
    let keys: Vec<&str> = lines.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        vec![
            "clientPort",
            "secureClientPort",
            "dataDir",
            "dataDirSize",
            "dataLogDir",
            "dataLogSize",
            "tickTime",
            "maxClientCnxns",
            "minSessionTimeout",
            "maxSessionTimeout",
            "clientPortListenBacklog",
            "serverId",
            "initLimit",
            "syncLimit",
            "electionAlg",
            "electionPort",
            "quorumPort",
            "peerType",
        ]
    );
    let get = |k: &str| lines.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str()).unwrap();
    assert_eq!(get("clientPort"), "20000");
    assert_eq!(get("dataDirSize"), "100");
    assert_eq!(get("dataLogSize"), "200");
    assert_eq!(get("electionPort"), "20001");
    assert_eq!(get("quorumPort"), "20002");
    assert_eq!(get("peerType"), "0");
    assert_eq!(get("clientPortListenBacklog"), "-1");
    let text = c.conf_text(0, 0, &c.quorum_config_text(0x100000000));
    assert!(text.starts_with("clientPort=20000\nsecureClientPort=20004\n"), "{text}");
    assert!(
        text.ends_with(
            "peerType=0\nmembership: \nserver.1=localhost:20002:20001:participant\n\
             server.2=localhost:20012:20011:participant\nserver.3=localhost:20022:20021:participant\n\
             version=100000000"
        ),
        "{text}"
    );
}

#[test]
fn conf_output_for_standalone_has_no_quorum_keys() {
    let lines = Config::default().to_conf_lines(0, 0);
    assert_eq!(lines.len(), 12);
    assert_eq!(lines.last().unwrap(), &("serverId", "1".to_string()));
    assert!(!Config::default().conf_text(0, 0, "").contains("membership"));
}

#[test]
fn precedence_flag_over_property_over_zoo_cfg_over_docker_env() {
    let (_dir, path) = cfg_dir("tickTime=3000\nmaxClientCnxns=7\n");
    let env = env_of(&[("ZOO_TICK_TIME", "4000"), ("ZOO_MAX_CLIENT_CNXNS", "9"), ("ZOO_SYNC_LIMIT", "3")]);
    let c = load_file(&path, &[], &env).unwrap();
    assert_eq!((c.tick_time_ms, c.max_client_cnxns, c.sync_limit), (3000, 7, 3));
    let c = load_file(&path, &["-D", "tickTime=3500"], &env).unwrap();
    assert_eq!(c.tick_time_ms, 3500);
    let c = load_file(&path, &["-D", "tickTime=3500", "--tick-time", "5000"], &env).unwrap();
    assert_eq!(c.tick_time_ms, 5000);
    assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (10000, 100000));
    let c = Config::load(Cli::default(), &env).unwrap();
    assert_eq!(c.tick_time_ms, 4000);
}

#[test]
fn a_flag_overrides_a_bad_lower_value() {
    let (_dir, path) = cfg_dir("clientPort=abc\n");
    assert!(load_file(&path, &[], &no_env).is_err());
    assert_eq!(load_file(&path, &["--client-port", "3000"], &no_env).unwrap().client_port, 3000);
}

#[test]
fn every_bad_value_names_file_line_and_key() {
    let cases = [
        ("clientPort", "abc", "is not a port number"),
        ("clientPort", "70000", "is not a port number"),
        ("admin.serverPort", "-1", "is not a port number"),
        ("tickTime", "0", "must be greater than 0"),
        ("tickTime", "fast", "is not a non-negative integer"),
        ("initLimit", "0", "must be greater than 0"),
        ("syncLimit", "x", "is not a non-negative integer"),
        ("minSessionTimeout", "-5", "is not a non-negative integer"),
        ("maxSessionTimeout", "1.5", "is not a non-negative integer"),
        ("maxClientCnxns", "many", "is not a non-negative integer"),
        ("jute.maxbuffer", "0", "must be greater than 0"),
        ("snapCount", "0", "must be greater than 0"),
        ("zookeeper.snapCount", "lots", "is not a non-negative integer"),
        ("readonlymode.enabled", "yes", "is not true or false"),
        ("standaloneEnabled", "maybe", "is not true or false"),
        ("admin.enableServer", "1", "is not true or false"),
        ("zookeeper.extendedTypesEnabled", "on", "is not true or false"),
        ("peerType", "voter", "is not participant or observer"),
        ("dataDir", "", "must not be empty"),
        ("DigestAuthenticationProvider.superDigest", "nocolon", "is not of the form user:base64digest"),
        ("secureClientPort", "tls", "is not a port number"),
        ("znode.container.checkIntervalMs", "0", "must be greater than 0"),
        ("server.1", "localhost:2888", "both the quorum port and the election port are required"),
    ];
    for (key, value, problem) in cases {
        let (_dir, path) = cfg_dir(&format!("# header\ntickTime=2000\n\n{key}={value}\n"));
        let err = load_file(&path, &[], &no_env).unwrap_err().to_string();
        let expected = format!("{}:4: {key}: {value:?} ", path.display());
        assert!(err.starts_with(&expected) && err.ends_with(problem), "got {err:?}, expected {expected:?}..{problem}");
    }
}

#[test]
fn bad_server_id_names_the_line() {
    let (_dir, path) = cfg_dir("tickTime=2000\nserver.0=localhost:2888:3888\n");
    let err = load_file(&path, &[], &no_env).unwrap_err().to_string();
    let expected = format!("{}:2: server.0: \"0\" is not a valid server id (an integer 1..=254)", path.display());
    assert_eq!(err, expected);
}

#[test]
fn example_message_shape() {
    let (_dir, path) = cfg_dir("a=1\nb=2\nc=3\nd=4\ne=5\nf=6\nclientPort=abc\n");
    let err = load_file(&path, &[], &no_env).unwrap_err();
    assert_eq!(err.to_string(), format!("{}:7: clientPort: \"abc\" is not a port number", path.display()));
}

#[test]
fn unknown_keys_warn_with_line() {
    let (_dir, path) = cfg_dir("tickTime=2000\nfrobnicate=1\n");
    let c = load_file(&path, &[], &no_env).unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].to_string().ends_with("zoo.cfg:2: unknown configuration key \"frobnicate\" ignored"));
}

#[test]
fn session_timeout_validation() {
    let (_dir, path) = cfg_dir("minSessionTimeout=50000\n");
    let err = load_file(&path, &[], &no_env).unwrap_err().to_string();
    assert!(err.starts_with("minSessionTimeout 50000 ("), "{err}");
    assert!(err.ends_with("is larger than maxSessionTimeout 40000 (default)"), "{err}");
    let (_dir, path) = cfg_dir("minSessionTimeout=1000\nmaxSessionTimeout=1000\n");
    let c = load_file(&path, &[], &no_env).unwrap();
    assert_eq!(c.clamp_session_timeout(30000), 1000);
}

#[test]
fn client_and_http_port_must_differ() {
    let err = Config::load(cli(&["--client-port", "8080"]), &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::PortClash { port: 8080, .. }), "{err}");
    let c = Config::load(cli(&["--client-port", "8080", "-D", "admin.enableServer=false"]), &no_env).unwrap();
    assert!(!c.http_enabled);
}

#[test]
fn myid_missing_invalid_or_unknown() {
    let cfg = "dataDir={dir}\nserver.1=a:2888:3888\nserver.2=b:2888:3888\n";
    let (dir, path) = cfg_dir(cfg);
    let err = load_file(&path, &[], &no_env).unwrap_err();
    assert!(matches!(&err, ConfigError::MissingMyId { path } if path == &dir.path().join("myid")), "{err}");
    assert!(err.to_string().contains(&dir.path().join("myid").display().to_string()));

    std::fs::write(dir.path().join("myid"), "two\n").unwrap();
    let err = load_file(&path, &[], &no_env).unwrap_err().to_string();
    assert!(err.contains("myid") && err.contains("\"two\""), "{err}");

    std::fs::write(dir.path().join("myid"), "3\n").unwrap();
    let err = load_file(&path, &[], &no_env).unwrap_err().to_string();
    assert!(err.starts_with("server id 3 (") && err.contains("[1, 2]"), "{err}");

    std::fs::write(dir.path().join("myid"), "2").unwrap();
    assert_eq!(load_file(&path, &[], &no_env).unwrap().my_id, 2);
    // The flag beats the file; ZOO_MY_ID is used only when the file is missing.
    assert_eq!(load_file(&path, &["--server-id", "1"], &no_env).unwrap().my_id, 1);
    assert_eq!(load_file(&path, &[], &env_of(&[("ZOO_MY_ID", "1")])).unwrap().my_id, 2);
    std::fs::remove_file(dir.path().join("myid")).unwrap();
    assert_eq!(load_file(&path, &[], &env_of(&[("ZOO_MY_ID", "1")])).unwrap().my_id, 1);
}

#[test]
fn server_lines_supply_client_port_and_address() {
    let cfg = "dataDir={dir}\nserver.1=a:2888:3888;2191\nserver.2=b:2888:3888:participant;127.0.0.1:2192\n\
               server.3=c:2888:3888:observer\n";
    let (dir, path) = cfg_dir(cfg);
    std::fs::write(dir.path().join("myid"), "2").unwrap();
    let c = load_file(&path, &[], &no_env).unwrap();
    assert_eq!(c.client_listen_addr(), "127.0.0.1:2192");
    assert_eq!(c.servers[2].role, PeerRole::Observer);
    assert_eq!(c.servers[0].client_addr, Some(HostPort { host: "0.0.0.0".into(), port: 2191 }));
    assert!(c.warnings.is_empty());
    // A flag beats the server line, with a warning.
    let c = load_file(&path, &["--client-port", "3000"], &no_env).unwrap();
    assert_eq!(c.client_port, 3000);
    assert!(matches!(c.warnings[..], [ConfigWarning::ClientPortOverridden { server_line: 2192, used: 3000, .. }]));
}

#[test]
fn observer_line_sets_peer_type() {
    let cfg = "dataDir={dir}\nserver.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888:observer\n\
               peerType=participant\n";
    let (dir, path) = cfg_dir(cfg);
    std::fs::write(dir.path().join("myid"), "3").unwrap();
    let c = load_file(&path, &[], &no_env).unwrap();
    assert_eq!(c.peer_type, PeerRole::Observer);
    assert!(matches!(c.warnings[..], [ConfigWarning::PeerTypeMismatch { .. }]));
    let lines = c.to_conf_lines(0, 0);
    assert!(lines.contains(&("peerType", "1".to_string())));
}

#[test]
fn single_server_line_is_standalone_unless_disabled() {
    let (_dir, path) = cfg_dir("dataDir={dir}\nserver.5=localhost:2888:3888;2181\n");
    let c = load_file(&path, &[], &no_env).unwrap();
    assert!(c.is_standalone());
    assert_eq!(c.my_id, 5);
    let (_dir, path) = cfg_dir("dataDir={dir}\nstandaloneEnabled=false\nserver.5=localhost:2888:3888;2181\n");
    assert!(matches!(load_file(&path, &[], &no_env), Err(ConfigError::MissingMyId { .. })));
    let c = load_file(&path, &["--server-id", "5"], &no_env).unwrap();
    assert!(!c.is_standalone());
}

#[test]
fn all_observers_is_rejected() {
    let (_dir, path) = cfg_dir("server.1=a:1:2:observer\nserver.2=b:1:2:observer\n");
    let err = load_file(&path, &["--server-id", "1"], &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::NoParticipants { .. }), "{err}");
}

#[test]
fn docker_image_environment() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let env = env_of(&[
        ("ZOO_MY_ID", "2"),
        ("ZOO_SERVERS", "server.1=zk1:2888:3888;2181 server.2=zk2:2888:3888;2181 server.3=zk3:2888:3888;2181"),
        ("ZOO_DATA_DIR", &data_dir),
        ("ZOO_DATA_LOG_DIR", "/datalog"),
        ("ZOO_TICK_TIME", "2000"),
        ("ZOO_INIT_LIMIT", "5"),
        ("ZOO_SYNC_LIMIT", "2"),
        ("ZOO_4LW_COMMANDS_WHITELIST", "srvr, ruok, mntr"),
        ("ZOO_MAX_CLIENT_CNXNS", "60"),
        ("ZOO_STANDALONE_ENABLED", "true"),
        ("ZOO_ADMINSERVER_ENABLED", "true"),
        ("ZOO_CFG_EXTRA", "zookeeper.extendedTypesEnabled=true jute.maxbuffer=0x400000"),
    ]);
    let c = Config::load(Cli::default(), &env).unwrap();
    assert_eq!(c.my_id, 2);
    assert_eq!(c.servers.len(), 3);
    assert!(!c.is_standalone());
    assert_eq!(c.client_port, 2181);
    assert_eq!(c.my_server().unwrap().host, "zk2");
    assert_eq!(c.data_dir, data.path());
    assert_eq!(c.data_log_dir, PathBuf::from("/datalog"));
    assert_eq!((c.init_limit, c.sync_limit), (5, 2));
    assert!(c.four_letter_words.allows("ruok") && c.four_letter_words.allows("mntr"));
    assert!(!c.four_letter_words.allows("envi"));
    assert!(c.ttl_enabled);
    assert_eq!(c.max_buffer, 0x400000);

    let bad = env_of(&[("ZOO_TICK_TIME", "soon")]);
    let err = Config::load(Cli::default(), &bad).unwrap_err();
    assert_eq!(err.to_string(), "environment variable ZOO_TICK_TIME: tickTime: \"soon\" is not a non-negative integer");
    let bad = env_of(&[("ZOO_SERVERS", "server.1=zk1:2888:3888;2181"), ("ZOO_MY_ID", "0")]);
    let err = Config::load(Cli::default(), &bad).unwrap_err().to_string();
    assert!(err.starts_with("environment variable ZOO_MY_ID: ZOO_MY_ID: \"0\""), "{err}");
}

#[test]
fn zoo_cfg_servers_replace_docker_servers() {
    let (_dir, path) = cfg_dir("server.7=a:1:2;2181\n");
    let env = env_of(&[("ZOO_SERVERS", "server.1=zk1:2888:3888;2181 server.2=zk2:2888:3888;2181")]);
    let c = load_file(&path, &[], &env).unwrap();
    assert_eq!(c.servers.iter().map(|s| s.id).collect::<Vec<_>>(), vec![7]);
    assert_eq!(c.my_id, 7);
}

#[test]
fn whitelist_sources_and_read_only_mode() {
    let c = Config::load(cli(&["-D", "readonlymode.enabled=true"]), &no_env).unwrap();
    assert!(c.four_letter_words.allows("isro") && c.four_letter_words.allows("srvr"));
    assert!(!c.four_letter_words.allows("ruok"));
    let c = Config::load(cli(&["--four-letter-words", "ruok envi"]), &no_env).unwrap();
    assert!(c.four_letter_words.allows("envi") && c.four_letter_words.allows("srvr"));
    assert!(!c.four_letter_words.allows("isro"));
    let c = Config::load(cli(&["-D", "zookeeper.4lw.commands.whitelist=*"]), &no_env).unwrap();
    assert!(c.four_letter_words.allows_all());
}

#[test]
fn misc_keys() {
    let (_dir, path) = cfg_dir(
        "clientPortAddress=127.0.0.1\nadmin.serverAddress=::1\nautopurge.snapRetainCount=1\n\
         autopurge.purgeInterval=24\nznode.container.checkIntervalMs=1000\n\
         znode.container.maxNeverUsedIntervalMs=5000\nclientPortListenBacklog=128\ndataLogDir=/logs\n",
    );
    let c = load_file(&path, &[], &no_env).unwrap();
    assert_eq!(c.client_listen_addr(), "127.0.0.1:2181");
    assert_eq!(c.http_listen_addr(), "[::1]:8080");
    assert_eq!(c.autopurge_snap_retain_count, 3);
    assert_eq!(c.autopurge_purge_interval_hours, 24);
    assert_eq!((c.container_check_interval_ms, c.container_max_never_used_interval_ms), (1000, 5000));
    assert_eq!(c.client_port_listen_backlog, Some(128));
    assert_eq!(c.data_log_dir, PathBuf::from("/logs"));
    assert_eq!(c.config_file.as_deref(), Some(path.as_path()));
}

#[test]
fn missing_config_file_is_an_error() {
    let err = Config::load(cli(&["-c", "/nonexistent/zoo.cfg"]), &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/zoo.cfg"));
}

#[test]
fn http_protection_from_zoo_cfg_and_from_the_docker_environment() {
    let (_dir, path) = cfg_dir(
        "http.readOnly=true\nhttp.token=s3cret\nhttp.basePath=/zk\nhttp.allowedHosts=zk.example, LOCALHOST:8080\n",
    );
    let c = load_file(&path, &[], &no_env).unwrap();
    assert!(c.http_read_only);
    assert_eq!(c.http_token.as_deref(), Some("s3cret"));
    assert_eq!(c.http_base_path, "/zk");
    assert_eq!(c.http_allowed_hosts, vec!["zk.example".to_string(), "localhost:8080".to_string()]);

    let env = env_of(&[
        ("ZOO_HTTP_TOKEN", "from-env"),
        ("ZOO_HTTP_READ_ONLY", "true"),
        ("ZOO_HTTP_USERS", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=, bob:GcMT0ijsx21yLyTWAWMqFV/azZE="),
    ]);
    let c = Config::load(cli(&[]), &env).unwrap();
    assert_eq!((c.http_token.as_deref(), c.http_read_only), (Some("from-env"), true));
    assert_eq!(c.http_users, vec!["alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=", "bob:GcMT0ijsx21yLyTWAWMqFV/azZE="]);
    let bad = env_of(&[("ZOO_HTTP_USERS", "alice:plaintext-password")]);
    assert!(Config::load(cli(&[]), &bad).is_err(), "a plain password is not a digest");

    let c = Config::load(cli(&[]), &no_env).unwrap();
    assert_eq!((c.http_token.as_deref(), c.http_read_only, c.http_allowed_hosts.len()), (None, false, 0));

    let c =
        Config::load(cli(&["--http-token", "from-flag", "--http-read-only", "--http-base-path", "/zk"]), &env).unwrap();
    assert_eq!(
        (c.http_token.as_deref(), c.http_read_only, c.http_base_path.as_str()),
        (Some("from-flag"), true, "/zk")
    );
}
