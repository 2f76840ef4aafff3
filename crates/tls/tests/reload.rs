//! ReloadingServerConfig picks up a replaced key store and keeps the old config on a bad one.

mod common;

use common::{cert, fixture, handshake, settings, PW};
use roost_tls::{client_config, ClientAuth, ReloadingServerConfig, StoreSpec, TlsSettings};

/// Replaces `dst` atomically, the way config management tools do.
fn replace(dst: &std::path::Path, data: &[u8]) {
    let tmp = dst.with_extension("tmp");
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
}

#[test]
fn reload_swaps_certificate_and_survives_corruption() {
    let dir = std::env::temp_dir().join(format!("roost-tls-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ks = dir.join("server.pem");
    std::fs::copy(fixture("server-keystore.pem"), &ks).unwrap();
    let mut s = TlsSettings::new(StoreSpec::new(&ks, Some(PW)), Some(common::spec("truststore.jks")));
    s.client_auth = ClientAuth::Need;
    let r = ReloadingServerConfig::new(s).unwrap();
    let client = client_config(&settings("client.jks", Some("truststore.jks")), Some("localhost".into())).unwrap();

    assert_eq!(handshake(r.current(), client.clone()).unwrap().server_cert().unwrap(), cert("server.pem"));
    assert!(!r.reload_if_changed().unwrap(), "nothing changed");

    replace(&ks, &std::fs::read(fixture("server2-keystore.pem")).unwrap());
    assert!(r.reload_if_changed().unwrap());
    assert_eq!(handshake(r.current(), client.clone()).unwrap().server_cert().unwrap(), cert("server2.pem"));
    assert!(!r.reload_if_changed().unwrap());

    replace(&ks, b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n");
    let e = r.reload_if_changed().unwrap_err();
    assert!(e.to_string().contains("server.pem"), "{e}");
    // The old config stays in service, and the broken file is retried (still an error).
    assert_eq!(handshake(r.current(), client.clone()).unwrap().server_cert().unwrap(), cert("server2.pem"));
    assert!(r.reload_if_changed().is_err());

    replace(&ks, &std::fs::read(fixture("server-keystore.pem")).unwrap());
    assert!(r.reload_if_changed().unwrap());
    assert_eq!(handshake(r.current(), client).unwrap().server_cert().unwrap(), cert("server.pem"));
}
