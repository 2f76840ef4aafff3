//! The HTTP port's protection, switched on from the server's own configuration (as an
//! operator would: `-D` here, the same keys as zoo.cfg), against the real binary.

mod common;

use common::{http, Server};

#[test]
fn a_token_and_read_only_mode_from_the_configuration_lock_the_http_port() {
    let server = Server::start(&["-D", "http.token=s3cret-token", "-D", "http.readOnly=true"]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.http_port));
    common::wait_for_port(addr, std::time::Duration::from_secs(10));
    let (status, _) = http(addr, "GET", "/api/v1/znodes/", None);
    assert_eq!(status, 401, "the API answers without the token");
    let authorized = |method: &str, path: &str, body: Option<&str>| {
        common::http_with_headers(addr, method, path, body, &[("Authorization", "Bearer s3cret-token")])
    };
    assert_eq!(authorized("GET", "/api/v1/znodes/", None).0, 200);
    let (status, body) = authorized("POST", "/api/v1/znodes/x", Some("{\"data\":\"1\"}"));
    assert_eq!(status, 403, "a write went through a read-only port: {body}");
    let log = server.log();
    assert!(log.contains("HTTP port protection: login required (http.token), read-only"), "{log}");
}

#[test]
fn a_default_node_says_its_http_port_is_open() {
    let server = Server::start(&[]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.http_port));
    common::wait_for_port(addr, std::time::Duration::from_secs(10));
    let log = server.log();
    assert!(log.contains("OPEN to anyone who can reach it"), "{log}");
}

#[test]
fn the_super_digest_works_over_http_as_on_the_client_port() {
    // superDigest for super:adminsecret
    let server =
        Server::start(&["-D", "zookeeper.DigestAuthenticationProvider.superDigest=super:GcMT0ijsx21yLyTWAWMqFV/azZE="]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.http_port));
    common::wait_for_port(addr, std::time::Duration::from_secs(10));
    let alice_only =
        r#"{"data":"hers","acl":[{"scheme":"digest","id":"alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=","perms":"cdrwa"}]}"#;
    let (status, body) = http(addr, "POST", "/api/v1/znodes/locked", Some(alice_only));
    assert!(status == 200 || status == 201, "{status} {body}");
    assert_eq!(http(addr, "GET", "/api/v1/znodes/locked", None).0, 403);
    let as_super = [("ZK-Auth", "digest super:adminsecret")];
    let (status, body) = common::http_with_headers(addr, "GET", "/api/v1/znodes/locked", None, &as_super);
    assert_eq!(status, 200, "the super digest is refused over HTTP: {body}");
    let wrong = [("ZK-Auth", "digest super:wrong")];
    assert_eq!(common::http_with_headers(addr, "GET", "/api/v1/znodes/locked", None, &wrong).0, 403);
}

#[test]
fn configured_users_with_hashed_passwords_lock_the_http_port() {
    // alice:secret, in ZooKeeper's digest format: no password is stored in the configuration.
    let server = Server::start(&["-D", "http.users=alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.http_port));
    common::wait_for_port(addr, std::time::Duration::from_secs(10));
    let with =
        |auth: &str| common::http_with_headers(addr, "GET", "/api/v1/znodes/", None, &[("Authorization", auth)]).0;
    assert_eq!(http(addr, "GET", "/api/v1/znodes/", None).0, 401);
    assert_eq!(with("Basic YWxpY2U6c2VjcmV0"), 200, "alice:secret over Basic auth"); // alice:secret
    assert_eq!(with("Basic YWxpY2U6d3Jvbmc="), 401, "alice:wrong"); // alice:wrong
    let (status, _) = http(addr, "POST", "/api/v1/auth", Some(r#"{"digest":"mallory:secret"}"#));
    assert_eq!(status, 401, "a login as a user who is not configured opens the port");
    assert!(server.log().contains("login required (http.users)"), "{}", server.log());
}
