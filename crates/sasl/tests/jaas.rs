//! JAAS files as ZooKeeper deployments (and kazoo's test harness) write them.

use roost_sasl::{ControlFlag, JaasConfig, JaasError};

const KAZOO_DIGEST: &str = r#"
Server {
  org.apache.zookeeper.server.auth.DigestLoginModule required
  user_super="super_secret"
  user_jaasuser="jaas_password";
};
Client {
  org.apache.zookeeper.server.auth.DigestLoginModule required
  username="jaasuser"
  password="jaas_password";
};
"#;

const KERBEROS: &str = r#"Server {
  com.sun.security.auth.module.Krb5LoginModule required
  useKeyTab=true
  keyTab="/tmp/server.keytab"
  storeKey=true
  useTicketCache=false
  isInitiator=false
  principal="zookeeper/127.0.0.1@KAZOOTEST.ORG";
};
"#;

fn err(text: &str) -> JaasError {
    JaasConfig::parse(text).unwrap_err()
}

#[test]
fn kazoo_digest_file() {
    let c = JaasConfig::parse(KAZOO_DIGEST).unwrap();
    assert_eq!(c.sections.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["Server", "Client"]);
    let server = c.section("Server").unwrap();
    assert_eq!(server.modules.len(), 1);
    assert_eq!(server.modules[0].class, "org.apache.zookeeper.server.auth.DigestLoginModule");
    assert_eq!(server.modules[0].flag, ControlFlag::Required);
    let users = server.digest_users();
    assert_eq!(users.len(), 2);
    assert_eq!(users["super"], "super_secret");
    assert_eq!(users["jaasuser"], "jaas_password");
    let client = c.section("Client").unwrap();
    assert_eq!(client.option("username"), Some("jaasuser"));
    assert_eq!(client.option("password"), Some("jaas_password"));
    assert!(client.digest_users().is_empty());
    assert!(c.section("server").is_none(), "names are case-sensitive");
}

#[test]
fn kerberos_file() {
    let c = JaasConfig::parse(KERBEROS).unwrap();
    let s = c.section("Server").unwrap();
    assert_eq!(s.modules[0].class, "com.sun.security.auth.module.Krb5LoginModule");
    assert_eq!(s.option("useKeyTab"), Some("true"));
    assert_eq!(s.option("keyTab"), Some("/tmp/server.keytab"));
    assert_eq!(s.option("storeKey"), Some("true"));
    assert_eq!(s.option("useTicketCache"), Some("false"));
    assert_eq!(s.option("isInitiator"), Some("false"));
    assert_eq!(s.option("principal"), Some("zookeeper/127.0.0.1@KAZOOTEST.ORG"));
    let keys: Vec<&str> = s.modules[0].options.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["useKeyTab", "keyTab", "storeKey", "useTicketCache", "isInitiator", "principal"]);
    assert!(s.digest_users().is_empty());
}

#[test]
fn empty_and_comment_only_files() {
    for text in ["", "   \n\t\r\n", "// nothing\n", "/* nothing */", "/* a\n * b */ // c"] {
        assert!(JaasConfig::parse(text).unwrap().sections.is_empty(), "{text:?}");
    }
}

#[test]
fn comments_whitespace_and_layout() {
    let text = "// header\r\nQuorumServer/*x*/{/* inline */org.apache.zookeeper.server.auth.DigestLoginModule\n\
                REQUIRED // flag is case-insensitive\n  user_test = \"secret\" ; } ;\n\
                QuorumLearner{org.apache.zookeeper.server.auth.DigestLoginModule Optional username=test password=\"secret\";};";
    let c = JaasConfig::parse(text).unwrap();
    assert_eq!(c.section("QuorumServer").unwrap().digest_users()["test"], "secret");
    let l = c.section("QuorumLearner").unwrap();
    assert_eq!(l.modules[0].flag, ControlFlag::Optional);
    assert_eq!(l.option("username"), Some("test"));
}

#[test]
fn several_modules_flags_and_user_merging() {
    let text = r#"Server {
        a.B requisite user_x="1" user_y="2";
        c.D sufficient;
        e.F optional user_x="3" other=bare-$word_*.v;
    };
    Empty { };"#;
    let c = JaasConfig::parse(text).unwrap();
    let s = c.section("Server").unwrap();
    let flags: Vec<ControlFlag> = s.modules.iter().map(|m| m.flag).collect();
    assert_eq!(flags, [ControlFlag::Requisite, ControlFlag::Sufficient, ControlFlag::Optional]);
    let users = s.digest_users();
    assert_eq!((users["x"].as_str(), users["y"].as_str()), ("3", "2"), "later modules win");
    assert_eq!(s.modules[2].option("other"), Some("bare-$word_*.v"));
    assert_eq!(s.option("other"), None, "option() reads the first module only");
    assert!(c.section("Empty").unwrap().modules.is_empty());
}

#[test]
fn repeated_option_keeps_last_value() {
    let c = JaasConfig::parse("S { m required k=\"1\" j=2 k=\"3\"; };").unwrap();
    assert_eq!(c.sections[0].modules[0].options, [("k".into(), "3".into()), ("j".into(), "2".into())]);
}

#[test]
fn quoted_string_escapes() {
    let c = JaasConfig::parse(
        r#"S { m required a="x\"y\\z" b="\t\n\101\0" c='single "q"' d="C:\\keys\\zk.keytab" e="\q"; };"#,
    )
    .unwrap();
    let m = &c.sections[0].modules[0];
    assert_eq!(m.option("a"), Some("x\"y\\z"));
    assert_eq!(m.option("b"), Some("\t\nA\0"));
    assert_eq!(m.option("c"), Some("single \"q\""));
    assert_eq!(m.option("d"), Some("C:\\keys\\zk.keytab"));
    assert_eq!(m.option("e"), Some("q"));
    // Quoted names and classes are allowed, and "" is an empty value.
    let c = JaasConfig::parse(r#""My App" { "a.B" "required" "k"=""; };"#).unwrap();
    assert_eq!(c.sections[0].name, "My App");
    assert_eq!(c.sections[0].modules[0].option("k"), Some(""));
}

#[test]
fn syntax_errors_say_where() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("Server {\n  m required k=v\n", 3, 1, "end of file"),
        ("Server {\n  m mandatory;\n};", 2, 5, "invalid control flag"),
        ("Server {\n  m required k v;\n};", 2, 16, "'='"),
        ("Server {\n  m required k=;\n};", 2, 16, "option value"),
        ("Server\n{ m required; }\n", 3, 1, "';'"),
        ("Server { m required; };\nServer { };", 2, 1, "defined twice"),
        ("{ m required; };", 1, 1, "section name"),
        ("S { m required\n  k=\"unterminated\n};", 2, 5, "unterminated"),
        ("S { m required k=\"open", 1, 18, "unterminated"),
        ("S { m required; };\n/* open comment", 2, 1, "unterminated /*"),
        ("S { m required k=/tmp/x; };", 1, 18, "'/'"),
        ("S { m required k=v# };", 1, 19, "'#'"),
        ("S { m required; }", 1, 18, "';'"),
        ("S { m; };", 1, 6, "control flag"),
        ("S { m required; }; }", 1, 20, "section name"),
    ];
    for &(text, line, column, needle) in cases {
        let e = err(text);
        assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e}");
        assert!(e.to_string().contains(&format!("line {line}, column {column}")));
    }
}

#[test]
fn oversized_file_is_refused() {
    let text = format!("/*{}*/", " ".repeat(roost_sasl::MAX_JAAS_FILE_LEN));
    assert!(err(&text).message.contains("bytes"));
}

#[test]
fn debug_redacts_secrets() {
    let c = JaasConfig::parse(KAZOO_DIGEST).unwrap();
    let text = format!("{c:?}");
    assert!(!text.contains("super_secret") && !text.contains("jaas_password"), "{text}");
    assert!(text.contains("user_jaasuser") && text.contains("DigestLoginModule") && text.contains("jaasuser"));
    let k = format!("{:?}", JaasConfig::parse(KERBEROS).unwrap());
    assert!(k.contains("/tmp/server.keytab"), "non-secret options stay visible: {k}");
}
