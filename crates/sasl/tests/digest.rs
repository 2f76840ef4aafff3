//! DIGEST-MD5 against a vector captured from ZooKeeper 3.8.0 (kazoo's pure-sasl client), a
//! round trip with our own client, and every way a response must fail.

use std::collections::BTreeMap;
use std::sync::Arc;

use roost_sasl::{DigestMd5Client, DigestMd5Server, SaslError, Step};

const NONCE: &str = "+autAc0GnRvcRok77zGeD4V8EHSvALwuHYSt/emN";
const CNONCE: &str = "33561892254982006";
const RESPONSE: &str = "bf56b70b003948f5a70274a57e029449";
const RSPAUTH: &str = "7d2e233a6ac8d49a2b896ec3f4b9725e";

fn users() -> Arc<BTreeMap<String, String>> {
    Arc::new(
        [("super", "super_secret"), ("jaasuser", "jaas_password")]
            .into_iter()
            .map(|(u, p)| (u.to_owned(), p.to_owned()))
            .collect(),
    )
}

fn server() -> DigestMd5Server {
    DigestMd5Server::with_nonce("zookeeper", "zk-sasl-md5", users(), NONCE.to_owned())
}

/// A server that has sent its challenge.
fn challenged() -> DigestMd5Server {
    let mut s = server();
    s.step(b"").unwrap();
    s
}

/// The captured response, in pure-sasl's directive order.
fn captured_response() -> String {
    format!(
        "qop=auth,realm=\"zk-sasl-md5\",username=\"jaasuser\",nonce=\"{NONCE}\",cnonce=\"{CNONCE}\",\
         nc=00000001,digest-uri=\"zookeeper/zk-sasl-md5\",response={RESPONSE}"
    )
}

#[test]
fn challenge_is_the_jdk_servers() {
    let mut s = server();
    let Step::Challenge(c) = s.step(b"").unwrap() else { panic!("expected a challenge") };
    assert_eq!(
        String::from_utf8(c).unwrap(),
        format!("realm=\"zk-sasl-md5\",nonce=\"{NONCE}\",charset=utf-8,algorithm=md5-sess")
    );
    assert!(!s.is_complete());
}

#[test]
fn random_nonce_is_40_base64_chars_and_fresh() {
    let challenge = |mut s: DigestMd5Server| match s.step(b"").unwrap() {
        Step::Challenge(c) => String::from_utf8(c).unwrap(),
        other => panic!("unexpected {other:?}"),
    };
    let a = challenge(DigestMd5Server::new("zookeeper", "zk-sasl-md5", users()));
    let b = challenge(DigestMd5Server::new("zookeeper", "zk-sasl-md5", users()));
    assert_ne!(a, b);
    let nonce = a.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap();
    assert_eq!(nonce.len(), 40);
    assert!(nonce.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/'));
}

#[test]
fn captured_vector_succeeds_with_captured_rspauth() {
    let mut s = challenged();
    let step = s.step(captured_response().as_bytes()).unwrap();
    assert_eq!(
        step,
        Step::Success { token: Some(format!("rspauth={RSPAUTH}").into_bytes()), authentication_id: "jaasuser".into() }
    );
    assert!(s.is_complete());
}

#[test]
fn our_client_reproduces_the_captured_response() {
    let mut c = DigestMd5Client::with_cnonce("jaasuser", "jaas_password", "zookeeper", "zk-sasl-md5", CNONCE.into());
    let challenge = format!("realm=\"zk-sasl-md5\",nonce=\"{NONCE}\",charset=utf-8,algorithm=md5-sess");
    let resp = String::from_utf8(c.step(challenge.as_bytes()).unwrap()).unwrap();
    assert!(resp.contains(&format!("response={RESPONSE}")), "{resp}");
    c.verify_rspauth(format!("rspauth={RSPAUTH}").as_bytes()).unwrap();
    assert!(c.is_complete());
}

#[test]
fn directives_in_any_order_and_spacing() {
    // Java's client order, with charset and maxbuf, unquoted where quoting is optional,
    // upper-case directive names and whitespace around separators.
    let resp = format!(
        "charset=utf-8, USERNAME = \"jaasuser\" ,realm=zk-sasl-md5,nonce=\"{NONCE}\",nc=00000001,\
         cnonce={CNONCE},digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,response={RESPONSE},qop=auth"
    );
    let mut s = challenged();
    assert!(matches!(s.step(resp.as_bytes()).unwrap(), Step::Success { .. }));
}

#[test]
fn qop_may_be_omitted() {
    let resp = captured_response().replace("qop=auth,", "");
    let mut s = challenged();
    assert!(matches!(s.step(resp.as_bytes()).unwrap(), Step::Success { .. }));
}

#[test]
fn escapes_inside_quotes_are_understood() {
    // `\j` is `j`: the escaped user name is still jaasuser.
    let resp = captured_response().replace("username=\"jaasuser\"", "username=\"jaa\\suser\"");
    let mut s = challenged();
    assert!(matches!(s.step(resp.as_bytes()).unwrap(), Step::Success { .. }));
}

#[test]
fn round_trip_with_our_client() {
    for (user, password) in [("jaasuser", "jaas_password"), ("super", "super_secret")] {
        let mut s = DigestMd5Server::new("zookeeper", "zk-sasl-md5", users());
        let mut c = DigestMd5Client::new(user, password, "zookeeper", "zk-sasl-md5");
        let Step::Challenge(ch) = s.step(b"").unwrap() else { panic!() };
        let resp = c.step(&ch).unwrap();
        let Step::Success { token: Some(token), authentication_id } = s.step(&resp).unwrap() else { panic!() };
        assert_eq!(authentication_id, user);
        c.verify_rspauth(&token).unwrap();
        assert!(s.is_complete() && c.is_complete());
    }
}

#[test]
fn quorum_round_trip_and_non_ascii_credentials() {
    // Latin-1 characters are hashed as ISO-8859-1, others as UTF-8 (the JDK's rule); both
    // sides must agree either way.
    let users: Arc<BTreeMap<String, String>> = Arc::new(
        [("peér", "pässword"), ("пир", "пароль,\"x\\")].into_iter().map(|(u, p)| (u.into(), p.into())).collect(),
    );
    for (user, password) in users.iter() {
        let mut s = DigestMd5Server::new("zookeeper-quorum", "zk-quorum-sasl-md5", users.clone());
        let mut c = DigestMd5Client::new(user, password, "zookeeper-quorum", "zk-quorum-sasl-md5");
        let Step::Challenge(ch) = s.step(b"").unwrap() else { panic!() };
        let Step::Success { token: Some(token), authentication_id } = s.step(&c.step(&ch).unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(&authentication_id, user);
        c.verify_rspauth(&token).unwrap();
    }
}

/// The exchange with our client, where `tamper` may change the client's response before the
/// server sees it.
fn exchange(user: &str, password: &str, protocol: &str, name: &str, tamper: impl Fn(String) -> String) -> SaslError {
    let mut s = DigestMd5Server::new("zookeeper", "zk-sasl-md5", users());
    let mut c = DigestMd5Client::new(user, password, protocol, name);
    let Step::Challenge(ch) = s.step(b"").unwrap() else { panic!() };
    let resp = tamper(String::from_utf8(c.step(&ch).unwrap()).unwrap());
    let err = s.step(resp.as_bytes()).unwrap_err();
    assert!(!s.is_complete());
    // A failed exchange stays failed.
    assert_eq!(s.step(resp.as_bytes()).unwrap_err(), SaslError::Finished("failed"));
    err
}

#[test]
fn wrong_password_fails() {
    let e = exchange("jaasuser", "wrong", "zookeeper", "zk-sasl-md5", |r| r);
    assert_eq!(e, SaslError::AuthenticationFailed);
}

#[test]
fn another_users_password_fails() {
    let e = exchange("jaasuser", "super_secret", "zookeeper", "zk-sasl-md5", |r| r);
    assert_eq!(e, SaslError::AuthenticationFailed);
}

#[test]
fn unknown_user_fails() {
    let e = exchange("nobody", "jaas_password", "zookeeper", "zk-sasl-md5", |r| r);
    assert_eq!(e, SaslError::AuthenticationFailed);
    // Even with an empty password, which is what an unknown user is hashed with.
    let e = exchange("nobody", "", "zookeeper", "zk-sasl-md5", |r| r);
    assert_eq!(e, SaslError::AuthenticationFailed);
}

#[test]
fn wrong_digest_uri_fails() {
    for (protocol, name) in [("zookeeper", "other"), ("zookeeper-quorum", "zk-sasl-md5"), ("http", "zk-sasl-md5")] {
        let e = exchange("jaasuser", "jaas_password", protocol, name, |r| r);
        assert!(matches!(e, SaslError::Rejected(ref m) if m.contains("digest-uri")), "{e:?}");
    }
}

#[test]
fn wrong_realm_fails() {
    let e = exchange("jaasuser", "jaas_password", "zookeeper", "zk-sasl-md5", |r| {
        r.replace("realm=\"zk-sasl-md5\"", "realm=\"other\"")
    });
    assert!(matches!(e, SaslError::Rejected(ref m) if m.contains("realm")), "{e:?}");
}

#[test]
fn wrong_nonce_fails() {
    let mut s = challenged();
    let resp = captured_response().replace(NONCE, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert!(matches!(s.step(resp.as_bytes()), Err(SaslError::Rejected(m)) if m.contains("nonce")));
}

#[test]
fn nonce_count_other_than_one_fails() {
    for nc in ["00000002", "1", "0000001", "000000001"] {
        let mut s = challenged();
        let resp = captured_response().replace("nc=00000001", &format!("nc={nc}"));
        assert!(matches!(s.step(resp.as_bytes()), Err(SaslError::Rejected(m)) if m.contains("nonce count")), "{nc}");
    }
}

#[test]
fn qop_other_than_auth_fails() {
    for qop in ["auth-int", "auth-conf", "AUTH", "\"auth,auth-int\""] {
        let mut s = challenged();
        let resp = captured_response().replace("qop=auth", &format!("qop={qop}"));
        assert!(matches!(s.step(resp.as_bytes()), Err(SaslError::Rejected(m)) if m.contains("qop")), "{qop}");
    }
    let mut s = challenged();
    let resp = format!("{},cipher=rc4", captured_response());
    assert!(matches!(s.step(resp.as_bytes()), Err(SaslError::Rejected(_))));
}

#[test]
fn charset_other_than_utf8_fails() {
    let mut s = challenged();
    let resp = format!("{},charset=iso-8859-1", captured_response());
    assert!(matches!(s.step(resp.as_bytes()), Err(SaslError::Rejected(m)) if m.contains("charset")));
}

#[test]
fn tampered_response_fails() {
    let mut s = challenged();
    let resp = captured_response().replace(RESPONSE, "bf56b70b003948f5a70274a57e02944a");
    assert_eq!(s.step(resp.as_bytes()), Err(SaslError::AuthenticationFailed));
    // The JDK compares the hex text, so upper case does not match either.
    let mut s = challenged();
    let resp = captured_response().replace(RESPONSE, &RESPONSE.to_uppercase());
    assert_eq!(s.step(resp.as_bytes()), Err(SaslError::AuthenticationFailed));
    // Changing the cnonce changes the expected response.
    let mut s = challenged();
    let resp = captured_response().replace(CNONCE, "33561892254982007");
    assert_eq!(s.step(resp.as_bytes()), Err(SaslError::AuthenticationFailed));
}

#[test]
fn authzid_must_be_the_user() {
    // With an authzid the digest covers it; a correct digest for authzid "super" must
    // still be refused for user jaasuser.
    let authzid_response = |authzid: &str| {
        let mut c =
            DigestMd5Client::with_cnonce("jaasuser", "jaas_password", "zookeeper", "zk-sasl-md5", CNONCE.into());
        let ch = format!("realm=\"zk-sasl-md5\",nonce=\"{NONCE}\",charset=utf-8,algorithm=md5-sess");
        let without = String::from_utf8(c.step(ch.as_bytes()).unwrap()).unwrap();
        // Recompute the digest with the authzid by hand (RFC 2831 2.1.2.1).
        use md5::{Digest, Md5};
        let inner = Md5::digest(b"jaasuser:zk-sasl-md5:jaas_password");
        let mut a1 = Md5::new();
        a1.update(inner);
        a1.update(format!(":{NONCE}:{CNONCE}:{authzid}").as_bytes());
        let ha1 = hex::encode(a1.finalize());
        let ha2 = hex::encode(Md5::digest(b"AUTHENTICATE:zookeeper/zk-sasl-md5"));
        let resp = hex::encode(Md5::digest(format!("{ha1}:{NONCE}:00000001:{CNONCE}:auth:{ha2}").as_bytes()));
        let old = without.split("response=").nth(1).unwrap().split(',').next().unwrap().to_owned();
        format!("{},authzid=\"{authzid}\"", without.replace(&old, &resp))
    };
    let mut s = challenged();
    assert!(matches!(s.step(authzid_response("jaasuser").as_bytes()), Ok(Step::Success { .. })));
    let mut s = challenged();
    assert!(
        matches!(s.step(authzid_response("super").as_bytes()), Err(SaslError::Rejected(m)) if m.contains("authzid"))
    );
    // The response computed without the authzid does not verify once one is added.
    let mut s = challenged();
    let resp = format!("{},authzid=\"jaasuser\"", captured_response());
    assert_eq!(s.step(resp.as_bytes()), Err(SaslError::AuthenticationFailed));
}

#[test]
fn replayed_second_step_fails() {
    let mut s = challenged();
    assert!(s.step(captured_response().as_bytes()).is_ok());
    assert_eq!(s.step(captured_response().as_bytes()), Err(SaslError::Finished("complete")));
    assert_eq!(s.step(b""), Err(SaslError::Finished("complete")));
    // A fresh server (another connection) has a fresh nonce: the captured response is stale.
    let mut fresh = DigestMd5Server::new("zookeeper", "zk-sasl-md5", users());
    fresh.step(b"").unwrap();
    assert!(matches!(fresh.step(captured_response().as_bytes()), Err(SaslError::Rejected(m)) if m.contains("nonce")));
}

#[test]
fn initial_response_is_refused() {
    let mut s = server();
    assert!(matches!(s.step(captured_response().as_bytes()), Err(SaslError::Rejected(_))));
    assert_eq!(s.step(b""), Err(SaslError::Finished("failed")));
}

#[test]
fn hostile_tokens_fail_cleanly() {
    let good = captured_response();
    let huge = format!("{good},x=\"{}\"", "a".repeat(5000));
    let many = format!("{good}{}", ",x=1".repeat(100));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("huge", huge.into_bytes()),
        ("exactly one over the limit", vec![b'a'; roost_sasl::MAX_TOKEN_LEN + 1]),
        ("too many directives", many.into_bytes()),
        ("unterminated quote", good.replace("username=\"jaasuser\"", "username=\"jaasuser").into_bytes()),
        ("quote ends in backslash", format!("{good},x=\"abc\\").into_bytes()),
        ("non-UTF-8", [good.as_bytes(), b",x=\"\xff\xfe\""].concat()),
        ("NUL", good.replace("nc=", "\0nc=").into_bytes()),
        ("no '='", format!("{good},lonely").into_bytes()),
        ("empty name", format!("{good},=1").into_bytes()),
        ("empty bare value", good.replace("nc=00000001", "nc=").into_bytes()),
        ("junk after value", good.replace("nc=00000001", "nc=00000001 x").into_bytes()),
        ("junk after quoted value", good.replace("\"jaasuser\"", "\"jaasuser\"x").into_bytes()),
        ("quote inside bare value", good.replace("nc=00000001", "nc=0000\"0001").into_bytes()),
        ("duplicate username", format!("{good},username=\"super\"").into_bytes()),
        ("duplicate response", format!("{good},response={RESPONSE}").into_bytes()),
        ("duplicate realm", format!("{good},realm=\"zk-sasl-md5\"").into_bytes()),
        ("duplicate nc, differently cased", format!("{good},NC=00000001").into_bytes()),
        ("maxbuf not a number", format!("{good},maxbuf=lots").into_bytes()),
        ("empty token", Vec::new()),
        ("only commas", b" , ,, ".to_vec()),
        ("binary", (0u8..=255).collect()),
    ];
    for (what, token) in cases {
        let mut s = challenged();
        let r = s.step(&token);
        assert!(matches!(r, Err(SaslError::Malformed(_))), "{what}: {r:?}");
        assert!(!s.is_complete(), "{what}");
    }
    for missing in ["username", "realm", "nonce", "cnonce", "nc", "digest-uri", "response"] {
        let token: Vec<&str> = good.split(',').filter(|d| !d.starts_with(&format!("{missing}="))).collect();
        let mut s = challenged();
        let r = s.step(token.join(",").as_bytes());
        assert!(matches!(r, Err(SaslError::Malformed(ref m)) if m.contains(missing)), "missing {missing}: {r:?}");
    }
    // Unknown directives are ignored (RFC 2831), even repeated ones.
    let mut s = challenged();
    assert!(s.step(format!("{good},x-ext=1,x-ext=2").as_bytes()).is_ok());
}

#[test]
fn client_checks_challenge_and_rspauth() {
    let ch = format!("realm=\"zk-sasl-md5\",nonce=\"{NONCE}\",charset=utf-8,algorithm=md5-sess");
    let client = || DigestMd5Client::new("jaasuser", "jaas_password", "zookeeper", "zk-sasl-md5");
    // Wrong rspauth.
    let mut c = client();
    c.step(ch.as_bytes()).unwrap();
    assert_eq!(c.verify_rspauth(b"rspauth=00000000000000000000000000000000"), Err(SaslError::BadRspauth));
    assert!(c.verify_rspauth(b"rspauth=x").is_err());
    // rspauth before a response.
    assert!(client().verify_rspauth(format!("rspauth={RSPAUTH}").as_bytes()).is_err());
    // Challenges it must not answer.
    for bad in [
        ch.replace("algorithm=md5-sess", "algorithm=md5"),
        ch.replace(",algorithm=md5-sess", ""),
        ch.replace(&format!("nonce=\"{NONCE}\","), ""),
        format!("{ch},qop=\"auth-conf\""),
        format!("{ch},nonce=\"x\""),
        ch.replace("charset=utf-8", "charset=ebcdic"),
        "x".repeat(5000),
    ] {
        assert!(client().step(bad.as_bytes()).is_err(), "{bad}");
    }
    // Several realms and an explicit qop list are fine.
    let mut c = client();
    let resp = c.step(format!("realm=\"a\",{ch},realm=\"b\",qop=\"auth,auth-int\"").as_bytes()).unwrap();
    assert!(String::from_utf8(resp).unwrap().contains("realm=\"zk-sasl-md5\""));
    // A second step is refused.
    assert!(c.step(ch.as_bytes()).is_err());
}

#[test]
fn debug_output_redacts_passwords() {
    let s = challenged();
    let c = DigestMd5Client::new("jaasuser", "jaas_password", "zookeeper", "zk-sasl-md5");
    for text in [format!("{s:?}"), format!("{c:?}")] {
        assert!(text.contains("jaasuser"), "{text}");
        assert!(!text.contains("jaas_password") && !text.contains("super_secret"), "{text}");
    }
}
