//! Principal parsing, auth_to_local rules and `sasl` ids, table-tested against the behaviour of
//! ZooKeeper's `KerberosName` and `SaslServerCallbackHandler`.

use roost_sasl::{is_super_user, sasl_identity, AuthToLocal, KerberosName, SaslError, SaslIdOptions};

fn name(service: &str, host: Option<&str>, realm: Option<&str>) -> KerberosName {
    KerberosName { service: service.into(), host: host.map(Into::into), realm: realm.map(Into::into) }
}

#[test]
fn principal_parsing() {
    let ok = [
        ("client@KAZOOTEST.ORG", name("client", None, Some("KAZOOTEST.ORG"))),
        ("zookeeper/127.0.0.1@KAZOOTEST.ORG", name("zookeeper", Some("127.0.0.1"), Some("KAZOOTEST.ORG"))),
        ("jaasuser", name("jaasuser", None, None)),
        ("a/b", name("a/b", None, None)),
        ("a/b/c", name("a/b/c", None, None)),
        ("", name("", None, None)),
        ("@R", name("", None, Some("R"))),
        ("a@", name("a", None, Some(""))),
        ("a/@R", name("a", Some(""), Some("R"))),
        ("@", name("", None, Some(""))),
    ];
    for (text, expected) in ok {
        let parsed = KerberosName::parse(text).unwrap();
        assert_eq!(parsed, expected, "{text}");
        assert_eq!(parsed.to_string(), text, "Display gives the principal back");
    }
    for bad in ["a@b@c", "a/b/c@R", "a@R/x", "a/b@c@d", "/a/b@R"] {
        let parsed = KerberosName::parse(bad);
        assert!(matches!(parsed, Err(SaslError::MalformedKerberosName(_))), "{bad}: {parsed:?}");
    }
    assert!(KerberosName::parse(&"a".repeat(roost_sasl::MAX_PRINCIPAL_LEN + 1)).is_err());
}

fn short(rules: &str, realm: Option<&str>, principal: &str) -> Result<String, SaslError> {
    AuthToLocal::parse(rules, realm.map(Into::into))?.short_name(&KerberosName::parse(principal)?)
}

/// (rules, default realm, principal, short name or a piece of the error message)
type Case = (&'static str, Option<&'static str>, &'static str, Result<&'static str, &'static str>);

#[test]
fn auth_to_local_table() {
    let hadoop = "RULE:[1:$1@$0](.*@FOO.COM)s/@.*//\nRULE:[2:$1@$0](.*@FOO.COM)s/@.*//\n  DEFAULT";
    let cases: &[Case] = &[
        // DEFAULT strips the default realm, with or without a host.
        ("DEFAULT", Some("EXAMPLE.COM"), "x@EXAMPLE.COM", Ok("x")),
        ("DEFAULT", Some("EXAMPLE.COM"), "x/host.example.com@EXAMPLE.COM", Ok("x")),
        ("DEFAULT", Some("EXAMPLE.COM"), "x@OTHER.COM", Err("no auth_to_local rule")),
        ("DEFAULT", Some("EXAMPLE.COM"), "x@example.com", Err("no auth_to_local rule")),
        // Without a Kerberos configuration ZooKeeper's default realm is "".
        ("DEFAULT", None, "x@OTHER.COM", Err("no auth_to_local rule")),
        ("DEFAULT", None, "x@", Ok("x")),
        // A name without realm is its own short name, whatever the rules.
        ("DEFAULT", None, "jaasuser", Ok("jaasuser")),
        ("RULE:[1:$1]s/.*/nope/", None, "jaasuser", Ok("jaasuser")),
        // Hadoop's documented examples.
        (hadoop, Some("EXAMPLE.COM"), "joe@FOO.COM", Ok("joe")),
        (hadoop, Some("EXAMPLE.COM"), "nn/host.foo.com@FOO.COM", Ok("nn")),
        (hadoop, Some("EXAMPLE.COM"), "joe@EXAMPLE.COM", Ok("joe")),
        (hadoop, Some("EXAMPLE.COM"), "joe@BAR.COM", Err("no auth_to_local rule")),
        ("RULE:[2:$1;$2](^.*;admin$)s/;admin$//", None, "joe/admin@X", Ok("joe")),
        ("RULE:[2:$1;$2](^.*;admin$)s/;admin$//", None, "joe/other@X", Err("no auth_to_local rule")),
        // The component count must match exactly.
        ("RULE:[2:$1]", None, "joe@X", Err("no auth_to_local rule")),
        ("RULE:[1:$1]", None, "joe/h@X", Err("no auth_to_local rule")),
        ("RULE:[2:$2]", None, "joe/h@X", Ok("h")),
        // The match regex must match the whole formatted string.
        ("RULE:[1:$1@$0](oe@X)s/@X//", None, "joe@X", Err("no auth_to_local rule")),
        // First match wins; without `g` only the first occurrence is replaced.
        ("RULE:[1:$1](.*)s/a/b/ RULE:[1:x]", None, "banana@R", Ok("bbnana")),
        ("RULE:[1:$1](.*)s/a/b/g", None, "banana@R", Ok("bbnbnb")),
        // Java replacement syntax: group references, greedy only while the group exists, escapes.
        ("RULE:[1:$1]s/(.)(.*)/$2$1/", None, "joe@R", Ok("oej")),
        ("RULE:[1:$1]s/(.)(.*)/$12/", None, "joe@R", Ok("j2")),
        ("RULE:[1:$1]s/(?P<first>.).*/${first}x/", None, "joe@R", Ok("jx")),
        (r"RULE:[1:$1]s/o/\$0/", None, "joe@R", Ok("j$0e")),
        ("RULE:[1:$1]s/(x)?o/[$1]/", None, "joe@R", Ok("j[]e")),
        ("RULE:[1:$1]s/o/$2/", None, "joe@R", Err("no group 2")),
        ("RULE:[1:$1]s/o/$x/", None, "joe@R", Err("illegal group reference")),
        // A fixed format needs no substitution.
        ("RULE:[1:guest]", None, "anyone@GUEST", Ok("guest")),
        ("RULE:[1:$1](.*)s/.*/guest/", None, "anyone@GUEST", Ok("guest")),
        // /L lower-cases (Hadoop's extension).
        ("RULE:[1:$1@$0](.*@FOO.COM)s/@.*///L", None, "JOE@FOO.COM", Ok("joe")),
        ("DEFAULT/L", Some("FOO.COM"), "JOE@FOO.COM", Ok("joe")),
        // A result that is still a principal is refused rather than passed on.
        ("RULE:[1:$1@$0]", None, "joe@R", Err("non-simple")),
        ("RULE:[2:$1/$2]", None, "joe/h@R", Err("non-simple")),
        ("RULE:[1:$1@$0] DEFAULT", None, "joe@", Err("non-simple")),
        // Format strings.
        ("RULE:[1:$3]", None, "joe@R", Err("outside the valid range")),
        ("RULE:[1:$2]", None, "joe@R", Err("cannot be applied")),
        ("RULE:[1:a$b]", None, "joe@R", Err("bad parameter")),
        ("RULE:[1:$99999999999999999999999]", None, "joe@R", Err("bad parameter")),
    ];
    for &(rules, realm, principal, expected) in cases {
        let got = short(rules, realm, principal);
        match (expected, &got) {
            (Ok(e), Ok(g)) => assert_eq!(g, e, "{rules} / {principal}"),
            (Err(needle), Err(e)) => assert!(e.to_string().contains(needle), "{rules} / {principal}: {e}"),
            _ => panic!("{rules} / {principal}: expected {expected:?}, got {got:?}"),
        }
    }
}

#[test]
fn invalid_rules() {
    for rules in [
        "NOPE",
        "RULE:[x:$1]",
        "RULE:[:$1]",
        "RULE:[1:$1",
        "RULE:[1:$1](unclosed[)",
        "RULE:[1:$1]s/(/x/",
        "RULE:[1:$1]s/x/y",
        "DEFAULT garbage",
        "RULE:[99999999999999999999999:$1]",
    ] {
        let parsed = AuthToLocal::parse(rules, None);
        assert!(matches!(parsed, Err(SaslError::InvalidRule(_))), "{rules}: {parsed:?}");
    }
    assert!(AuthToLocal::parse(&"DEFAULT ".repeat(10_000), None).is_err(), "over the length cap");
    assert!(AuthToLocal::parse("", None).is_ok(), "no rules: only bare names map");
    assert!(AuthToLocal::parse(" DEFAULT\n\tDEFAULT/ ", None).is_ok());
}

#[test]
fn sasl_identity_table() {
    let defaults = SaslIdOptions::default();
    let with_realm = |remove_host, remove_realm| SaslIdOptions {
        rules: AuthToLocal::parse("DEFAULT", Some("KAZOOTEST.ORG".into())).unwrap(),
        remove_host,
        remove_realm,
    };
    let cases: Vec<(&SaslIdOptions, &str, &str)> = vec![
        (&defaults, "client@KAZOOTEST.ORG", "client@KAZOOTEST.ORG"),
        (&defaults, "jaasuser", "jaasuser"),
        (&defaults, "zookeeper/127.0.0.1@KAZOOTEST.ORG", "zookeeper/127.0.0.1@KAZOOTEST.ORG"),
    ];
    for (opts, id, expected) in cases {
        assert_eq!(sasl_identity(id, opts).unwrap(), expected, "{id}");
    }
    let table = [
        // (remove_host, remove_realm, principal, id)
        (false, false, "client@KAZOOTEST.ORG", "client@KAZOOTEST.ORG"),
        (false, true, "client@KAZOOTEST.ORG", "client"),
        (false, false, "zookeeper/127.0.0.1@KAZOOTEST.ORG", "zookeeper/127.0.0.1@KAZOOTEST.ORG"),
        (true, false, "zookeeper/127.0.0.1@KAZOOTEST.ORG", "zookeeper@KAZOOTEST.ORG"),
        (false, true, "zookeeper/127.0.0.1@KAZOOTEST.ORG", "zookeeper/127.0.0.1"),
        (true, true, "zookeeper/127.0.0.1@KAZOOTEST.ORG", "zookeeper"),
        (true, true, "jaasuser", "jaasuser"),
        // No rule maps a foreign realm: ZooKeeper keeps the full principal, flags or not.
        (true, true, "client@OTHER.ORG", "client@OTHER.ORG"),
        (true, true, "zookeeper/h@OTHER.ORG", "zookeeper/h@OTHER.ORG"),
    ];
    for (remove_host, remove_realm, id, expected) in table {
        assert_eq!(sasl_identity(id, &with_realm(remove_host, remove_realm)).unwrap(), expected, "{id}");
    }
    // Rules can rename; host and realm are appended to the short name.
    let renaming = SaslIdOptions {
        rules: AuthToLocal::parse("RULE:[2:$1](zookeeper)s/.*/zk/", None).unwrap(),
        remove_host: false,
        remove_realm: false,
    };
    assert_eq!(sasl_identity("zookeeper/h@R", &renaming).unwrap(), "zk/h@R");
    assert!(matches!(sasl_identity("a@b@c", &defaults), Err(SaslError::MalformedKerberosName(_))));
    // A rule ZooKeeper cannot apply fails the authentication there; a bad format string or a
    // non-simple result only falls back to the full principal.
    let opts = |rules: &str| SaslIdOptions { rules: AuthToLocal::parse(rules, None).unwrap(), ..Default::default() };
    assert!(matches!(sasl_identity("joe@R", &opts("RULE:[1:$1]s/o/$2/")), Err(SaslError::RuleFailed(_))));
    assert!(matches!(sasl_identity("joe@R", &opts("RULE:[1:$2]")), Err(SaslError::RuleFailed(_))));
    assert_eq!(sasl_identity("joe@R", &opts("RULE:[1:$3]")).unwrap(), "joe@R");
    assert_eq!(sasl_identity("joe@R", &opts("RULE:[1:$1@$0]")).unwrap(), "joe@R");
}

#[test]
fn super_users() {
    let supers = vec!["super".to_owned(), "admin@KAZOOTEST.ORG".to_owned()];
    assert!(is_super_user("super", &supers));
    assert!(is_super_user("admin@KAZOOTEST.ORG", &supers));
    assert!(!is_super_user("admin", &supers));
    assert!(!is_super_user("Super", &supers));
    assert!(!is_super_user("", &["".to_owned()]));
    assert!(!is_super_user("super", &[]));
}
