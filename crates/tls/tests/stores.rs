//! Loading key and trust stores in every supported format.

mod common;

use common::{cert, fixture, spec, PW};
use roost_tls::{load_key_store, load_trust_store, PrivateKeyDer, StoreSpec, TlsError};

fn tmp(name: &str, data: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("roost-tls-stores-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn pyjks_keystore_like_kazoo() {
    let km = load_key_store(&spec("keystore.jks")).unwrap();
    assert_eq!(km.chain, vec![cert("server.pem")]);
    assert!(matches!(km.key, PrivateKeyDer::Pkcs8(_)));
}

#[test]
fn pyjks_truststore() {
    assert_eq!(load_trust_store(&spec("truststore.jks")).unwrap(), vec![cert("ca.pem")]);
    // Without a password Java skips the integrity check; so do we.
    let no_pw = StoreSpec::new(fixture("truststore.jks"), None);
    assert_eq!(load_trust_store(&no_pw).unwrap(), vec![cert("ca.pem")]);
    // Certificates of key entries count as trusted too, and need no key password.
    let ks = StoreSpec::new(fixture("keystore.jks"), None);
    assert_eq!(load_trust_store(&ks).unwrap(), vec![cert("server.pem")]);
}

#[test]
fn keytool_jks_and_pkcs12() {
    let jks = load_key_store(&spec("keytool-keystore.jks")).unwrap();
    assert_eq!(jks.chain.len(), 2);
    assert_eq!(jks.chain[1], cert("ca.pem"));
    let p12 = load_key_store(&spec("keytool-keystore.p12")).unwrap();
    assert_eq!(p12.chain, jks.chain);
    assert_eq!(p12.key.secret_der(), jks.key.secret_der());
    assert_eq!(load_trust_store(&spec("keytool-truststore.p12")).unwrap(), vec![cert("ca.pem")]);
    assert_eq!(load_trust_store(&spec("keytool-truststore.jks")).unwrap(), vec![cert("ca.pem")]);
}

#[test]
fn openssl_pkcs12() {
    let km = load_key_store(&spec("server.p12")).unwrap();
    assert_eq!(km.chain, vec![cert("server.pem"), cert("ca.pem")]);
    assert_eq!(load_trust_store(&spec("truststore-openssl.p12")).unwrap(), vec![cert("ca.pem")]);
    let wrong = StoreSpec::new(fixture("server.p12"), Some("nope"));
    let e = load_key_store(&wrong).unwrap_err();
    assert!(matches!(e, TlsError::WrongPassword { .. }), "{e}");
}

#[test]
fn pem_key_stores() {
    let enc = load_key_store(&spec("server-keystore-enc.pem")).unwrap();
    assert_eq!(enc.chain, vec![cert("server.pem"), cert("ca.pem")]);
    let plain = load_key_store(&spec("server-keystore.pem")).unwrap();
    assert_eq!(plain.key.secret_der(), enc.key.secret_der());
    assert!(matches!(load_key_store(&spec("client-keystore.pem")).unwrap().key, PrivateKeyDer::Pkcs1(_)));
    assert!(matches!(load_key_store(&spec("ec-server-keystore.pem")).unwrap().key, PrivateKeyDer::Sec1(_)));

    let wrong = StoreSpec::new(fixture("server-keystore-enc.pem"), Some("wrong-pw-xyz"));
    let msg = load_key_store(&wrong).unwrap_err().to_string();
    assert!(msg.contains("server-keystore-enc.pem") && !msg.contains("wrong-pw-xyz"), "{msg}");
    let none = StoreSpec::new(fixture("server-keystore-enc.pem"), None);
    assert!(matches!(load_key_store(&none), Err(TlsError::PasswordRequired { .. })));
    // A file with certificates only is no key store.
    assert!(matches!(load_key_store(&spec("ca.pem")), Err(TlsError::NoPrivateKey { .. })));
}

#[test]
fn pem_trust_stores() {
    assert_eq!(load_trust_store(&spec("two-cas.pem")).unwrap(), vec![cert("ca.pem"), cert("other-ca.pem")]);
    let p = tmp("empty.pem", b"nothing here\n");
    assert!(matches!(load_trust_store(&StoreSpec::new(p, None)), Err(TlsError::NoCertificate { .. })));
}

#[test]
fn jks_wrong_password_is_named() {
    let s = StoreSpec::new(fixture("keystore.jks"), Some("secret-guess"));
    let e = load_key_store(&s).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, TlsError::WrongPassword { .. }));
    assert!(msg.contains("keystore password was incorrect") && msg.contains("keystore.jks"), "{msg}");
    assert!(!msg.contains("secret-guess") && !format!("{e:?}").contains("secret-guess"));
    assert!(matches!(
        load_trust_store(&StoreSpec::new(fixture("truststore.jks"), Some("x"))),
        Err(TlsError::WrongPassword { .. })
    ));
}

#[test]
fn jks_tampered_and_truncated() {
    let data = std::fs::read(fixture("keystore.jks")).unwrap();
    let mut t = data.clone();
    let mid = t.len() / 2;
    t[mid] ^= 1;
    let p = tmp("tampered.jks", &t);
    assert!(load_key_store(&StoreSpec::new(p, Some(PW))).is_err());
    let p = tmp("truncated.jks", &data[..data.len() - 30]);
    let e = load_key_store(&StoreSpec::new(p, Some(PW))).unwrap_err();
    assert!(matches!(e, TlsError::Malformed { .. }), "{e}");
}

#[test]
fn jceks_rejected_clearly() {
    let p = tmp("store.jks", &[0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2, 0, 0, 0, 0]);
    let e = load_key_store(&StoreSpec::new(p, Some(PW))).unwrap_err();
    assert!(matches!(e, TlsError::JceksNotSupported { .. }) && e.to_string().contains("JCEKS"), "{e}");
}

#[test]
fn explicit_type_and_missing_file() {
    let s =
        StoreSpec { location: fixture("keystore.jks"), password: Some(PW.into()), store_type: Some("bcfks".into()) };
    assert!(matches!(load_key_store(&s), Err(TlsError::UnsupportedStoreType(_))));
    let s =
        StoreSpec { location: fixture("keystore.jks"), password: Some(PW.into()), store_type: Some("PKCS12".into()) };
    assert!(load_key_store(&s).is_err());
    let e = load_key_store(&spec("missing.jks")).unwrap_err();
    assert!(matches!(e, TlsError::Io { .. }) && e.to_string().contains("missing.jks"));
}
