//! The GSSAPI server against a real MIT KDC (tests/kerberos/kdc.sh) and a libgssapi client in
//! this process, through the whole RFC 4752 exchange, and the ways it must fail.
//!
//! Every test prints a skip line and passes when krb5kdc is not installed
//! (`apt-get install krb5-kdc krb5-admin-server krb5-user`).
//!
//! The tests share one KDC, started by the first test that needs it and stopped when the last
//! one still using it finishes. The client side needs the KDC's profile and a ticket cache, and
//! MIT krb5 takes those only from the environment (`KRB5_CONFIG`, `KRB5CCNAME`), so the KDC's
//! start sets them for this process; it happens while no other test holds the KDC, so no GSS-API
//! call runs concurrently with it. The server side needs neither: it reads its key table through
//! the credential store.
#![cfg(feature = "gssapi")]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};

use base64::Engine as _;
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext as _};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL};
use roost_sasl::{
    default_realm, sasl_identity, AuthToLocal, GssapiCredentials, GssapiServer, JaasConfig, SaslError, SaslIdOptions,
    Step, MAX_GSSAPI_TOKEN_LEN,
};

const SERVICE: &str = "zookeeper/127.0.0.1@KAZOOTEST.ORG";
const OTHER_SERVICE: &str = "other/127.0.0.1@KAZOOTEST.ORG";
const CLIENT: &str = "client@KAZOOTEST.ORG";

struct Kdc {
    dir: tempfile::TempDir,
}

impl Kdc {
    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn server_keytab(&self) -> PathBuf {
        self.path("server.keytab")
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(kdc_script()).arg("stop").arg(self.dir.path()).status();
    }
}

fn kdc_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/kerberos/kdc.sh")
}

fn krb5kdc_installed() -> bool {
    ["/usr/sbin/krb5kdc", "/usr/local/sbin/krb5kdc"].iter().any(|p| Path::new(p).exists())
        && Command::new("kinit").arg("-V").output().is_ok()
}

/// The shared KDC with the client's ticket in the private cache, or None (after printing why)
/// when the Kerberos tools are missing.
fn kdc() -> Option<Arc<Kdc>> {
    static SHARED: Mutex<Weak<Kdc>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(kdc) = shared.upgrade() {
        return Some(kdc);
    }
    if !krb5kdc_installed() {
        println!("skipping: krb5kdc/kinit not installed (apt-get install krb5-kdc krb5-admin-server krb5-user)");
        return None;
    }
    let dir = tempfile::Builder::new().prefix("roost-kdc").tempdir().unwrap();
    let kdc = Kdc { dir };
    let status = Command::new("bash")
        .arg(kdc_script())
        .arg("start")
        .arg(kdc.dir.path())
        .env("KDC_EXTRA_PRINCIPALS", "other/127.0.0.1")
        .status()
        .unwrap();
    assert!(status.success(), "kdc.sh start failed");
    let env = [
        ("KRB5_CONFIG", kdc.path("krb5.conf").into_os_string()),
        ("KRB5_KDC_PROFILE", kdc.path("kdc.conf").into_os_string()),
        ("KRB5CCNAME", format!("FILE:{}", kdc.path("ccache").display()).into()),
        ("KRB5RCACHEDIR", kdc.dir.path().as_os_str().to_owned()),
    ];
    for (k, v) in &env {
        // See the module comment for why this is not racing with GSS-API calls.
        std::env::set_var(k, v);
    }
    let kinit = Command::new("kinit").arg("-kt").arg(kdc.path("client.keytab")).arg(CLIENT).status().unwrap();
    assert!(kinit.success(), "kinit failed");
    // One key table holding both services' keys, for the test that the server is bound to its
    // principal rather than to whatever key table it was given.
    for principal in [SERVICE, OTHER_SERVICE] {
        let out = Command::new("kadmin.local")
            .arg("-q")
            .arg(format!("ktadd -k {} -norandkey {principal}", kdc.path("both.keytab").display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "kadmin.local: {}", String::from_utf8_lossy(&out.stderr));
    }
    let kdc = Arc::new(kdc);
    *shared = Arc::downgrade(&kdc);
    Some(kdc)
}

fn client_for(service: &str, flags: CtxFlags) -> ClientCtx {
    let target = Name::new(service.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL)).unwrap();
    ClientCtx::new(None, target, flags, Some(GSS_MECH_KRB5))
}

/// Flags pykerberos (kazoo's pure-sasl) asks for.
fn pykerberos_flags() -> CtxFlags {
    CtxFlags::GSS_C_MUTUAL_FLAG | CtxFlags::GSS_C_SEQUENCE_FLAG
}

fn server(kdc: &Kdc) -> GssapiServer {
    GssapiServer::new(SERVICE, Some(&kdc.server_keytab())).unwrap()
}

/// Runs the context establishment, then hands the server's wrapped layer offer to `answer`,
/// which returns the token to send back (normally wrapped by the client).
fn exchange(
    server: &mut GssapiServer,
    client: &mut ClientCtx,
    answer: impl FnOnce(&mut ClientCtx, &[u8]) -> Vec<u8>,
) -> Result<Step, SaslError> {
    let first = client.step(None, None).unwrap().unwrap();
    let mut step = server.step(&first)?;
    // Context establishment: feed the server's tokens to the client until it is complete. Like
    // pure-sasl, answer the server's last context token with an empty message.
    while !client.is_complete() {
        let Step::Challenge(token) = step else { panic!("server finished before the client: {step:?}") };
        let reply = client.step(Some(&token), None).unwrap();
        step = server.step(reply.as_deref().unwrap_or(&[]))?;
    }
    let Step::Challenge(offer) = step else { panic!("expected the layer offer, got {step:?}") };
    let reply = answer(client, &offer);
    server.step(&reply)
}

/// What pure-sasl answers: layer none, the server's size, and the principal as authzid.
fn choose(layer: u8, authzid: &str) -> impl FnOnce(&mut ClientCtx, &[u8]) -> Vec<u8> + use<'_> {
    move |client, offer| {
        let plain = client.unwrap(offer).unwrap();
        assert_eq!(&plain[..], &[0x01, 0x01, 0x00, 0x00], "offer: layer none, max 65536");
        let mut msg = vec![layer, 0x01, 0x00, 0x00];
        msg.extend_from_slice(authzid.as_bytes());
        client.wrap(false, &msg).unwrap().to_vec()
    }
}

fn assert_gss_error(result: Result<Step, SaslError>, what: &str) {
    match result {
        Err(e @ (SaslError::Gssapi(_) | SaslError::GssapiRejected(_))) => println!("{what}: {e}"),
        other => panic!("{what}: expected a GSSAPI error, got {other:?}"),
    }
}

#[test]
fn full_exchange_as_pure_sasl_does_it() {
    let Some(kdc) = kdc() else { return };
    let mut s = server(&kdc);
    let mut c = client_for(SERVICE, pykerberos_flags());
    let step = exchange(&mut s, &mut c, choose(0x01, CLIENT)).unwrap();
    assert_eq!(step, Step::Success { token: None, authentication_id: CLIENT.into() });
    assert!(s.is_complete());
    // Nothing more is accepted.
    assert_gss_error(s.step(b""), "step after success");
    assert!(s.is_complete());
}

#[test]
fn without_mutual_auth_and_without_authzid() {
    let Some(kdc) = kdc() else { return };
    let mut s = server(&kdc);
    // No mutual authentication: the server has no context token to return and sends the layer
    // offer in answer to the client's first token, as the JDK does.
    let mut c = client_for(SERVICE, CtxFlags::empty());
    let first = c.step(None, None).unwrap().unwrap();
    assert!(c.is_complete());
    let Step::Challenge(offer) = s.step(&first).unwrap() else { panic!() };
    let reply = choose(0x01, "")(&mut c, &offer);
    assert_eq!(s.step(&reply).unwrap(), Step::Success { token: None, authentication_id: CLIENT.into() });
}

#[test]
fn credentials_are_shared_between_connections() {
    let Some(kdc) = kdc() else { return };
    let creds = GssapiCredentials::acquire(SERVICE, Some(&kdc.server_keytab())).unwrap();
    assert_eq!(creds.principal(), SERVICE);
    for _ in 0..3 {
        let mut s = GssapiServer::with_credentials(&creds);
        let mut c = client_for(SERVICE, pykerberos_flags());
        let step = exchange(&mut s, &mut c, choose(0x01, CLIENT)).unwrap();
        assert!(matches!(step, Step::Success { token: None, .. }));
    }
}

#[test]
fn server_moves_between_threads_mid_exchange() {
    fn send_and_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send::<GssapiServer>();
    send_and_sync::<GssapiCredentials>();
    let Some(kdc) = kdc() else { return };
    let mut s = server(&kdc);
    let mut c = client_for(SERVICE, pykerberos_flags());
    let first = c.step(None, None).unwrap().unwrap();
    let (mut s, step) = std::thread::spawn(move || {
        let step = s.step(&first);
        (s, step)
    })
    .join()
    .unwrap();
    let Ok(Step::Challenge(ap_rep)) = step else { panic!("{step:?}") };
    assert!(c.step(Some(&ap_rep), None).unwrap().is_none());
    let Step::Challenge(offer) = s.step(b"").unwrap() else { panic!() };
    let reply = choose(0x01, CLIENT)(&mut c, &offer);
    let step = std::thread::spawn(move || s.step(&reply)).join().unwrap();
    assert_eq!(step, Ok(Step::Success { token: None, authentication_id: CLIENT.into() }));
}

#[test]
fn another_authzid_is_refused() {
    let Some(kdc) = kdc() else { return };
    for authzid in ["super@KAZOOTEST.ORG", "client", "client@KAZOOTEST.ORG\0"] {
        let mut s = server(&kdc);
        let mut c = client_for(SERVICE, pykerberos_flags());
        let result = exchange(&mut s, &mut c, choose(0x01, authzid));
        assert!(matches!(result, Err(SaslError::GssapiRejected(_))), "authzid {authzid:?}: {result:?}");
        println!("authzid {authzid:?}: {result:?}");
        assert!(!s.is_complete());
        assert_gss_error(s.step(b""), "step after failure");
    }
}

#[test]
fn security_layers_other_than_none_are_refused() {
    let Some(kdc) = kdc() else { return };
    for layer in [0x00, 0x02, 0x04, 0x03, 0x07, 0xff] {
        let mut s = server(&kdc);
        let mut c = client_for(SERVICE, pykerberos_flags());
        let result = exchange(&mut s, &mut c, choose(layer, CLIENT));
        assert!(matches!(result, Err(SaslError::GssapiRejected(_))), "layer {layer:#x}: {result:?}");
        println!("layer {layer:#x}: {result:?}");
    }
}

#[test]
fn ticket_for_another_service_is_refused() {
    let Some(kdc) = kdc() else { return };
    // The server's key table has no key for the other service.
    let mut s = server(&kdc);
    let mut c = client_for(OTHER_SERVICE, pykerberos_flags());
    assert_gss_error(s.step(&c.step(None, None).unwrap().unwrap()), "other service, own key table");

    // A key table with both keys: the server is still bound to its own principal...
    let mut s = GssapiServer::new(SERVICE, Some(&kdc.path("both.keytab"))).unwrap();
    let mut c = client_for(OTHER_SERVICE, pykerberos_flags());
    assert_gss_error(s.step(&c.step(None, None).unwrap().unwrap()), "other service, shared key table");

    // ... although that key table does hold a key that works for the other service.
    let mut s = GssapiServer::new(OTHER_SERVICE, Some(&kdc.path("both.keytab"))).unwrap();
    let mut c = client_for(OTHER_SERVICE, pykerberos_flags());
    let step = exchange(&mut s, &mut c, choose(0x01, CLIENT)).unwrap();
    assert_eq!(step, Step::Success { token: None, authentication_id: CLIENT.into() });
    // And our own service works from it too.
    let mut s = GssapiServer::new(SERVICE, Some(&kdc.path("both.keytab"))).unwrap();
    let mut c = client_for(SERVICE, pykerberos_flags());
    assert!(exchange(&mut s, &mut c, choose(0x01, "")).is_ok());
}

#[test]
fn garbage_is_refused_at_every_stage() {
    let Some(kdc) = kdc() else { return };
    // Instead of the first context token.
    for garbage in [&b""[..], b"\x00", b"hello, world", &[0x60; 100], &[0xff; 4096]] {
        let mut s = server(&kdc);
        assert_gss_error(s.step(garbage), "garbage context token");
        assert_gss_error(s.step(garbage), "after failure");
    }
    // Too large, even before it is parsed.
    let mut s = server(&kdc);
    assert_gss_error(s.step(&vec![0x60; MAX_GSSAPI_TOKEN_LEN + 1]), "oversized token");

    // A non-empty answer to the server's last context token.
    let mut s = server(&kdc);
    let mut c = client_for(SERVICE, pykerberos_flags());
    let Step::Challenge(ap_rep) = s.step(&c.step(None, None).unwrap().unwrap()).unwrap() else { panic!() };
    assert!(c.step(Some(&ap_rep), None).unwrap().is_none());
    assert_gss_error(s.step(b"\x01"), "non-empty after the context");

    // Instead of the wrapped layer choice: garbage, the choice not wrapped, a short choice,
    // the server's own offer echoed back.
    type Answer = fn(&mut ClientCtx, &[u8]) -> Vec<u8>;
    let answers: [(&str, Answer); 5] = [
        ("garbage", |_, _| b"garbage".to_vec()),
        ("empty", |_, _| Vec::new()),
        ("unwrapped choice", |_, _| b"\x01\x01\x00\x00client@KAZOOTEST.ORG".to_vec()),
        ("3-byte choice", |c, _| c.wrap(false, b"\x01\x00\x00").unwrap().to_vec()),
        ("offer echoed", |_, offer| offer.to_vec()),
    ];
    for (what, answer) in answers {
        let mut s = server(&kdc);
        let mut c = client_for(SERVICE, pykerberos_flags());
        assert_gss_error(exchange(&mut s, &mut c, answer), what);
        assert!(!s.is_complete());
    }
}

#[test]
fn credentials_must_exist() {
    let Some(kdc) = kdc() else { return };
    // The principal is not in the key table.
    assert!(matches!(
        GssapiServer::new("nobody/127.0.0.1@KAZOOTEST.ORG", Some(&kdc.server_keytab())),
        Err(SaslError::Gssapi(_))
    ));
    assert!(matches!(GssapiServer::new(OTHER_SERVICE, Some(&kdc.server_keytab())), Err(SaslError::Gssapi(_))));
    // The key table does not exist.
    assert!(matches!(GssapiServer::new(SERVICE, Some(&kdc.path("missing.keytab"))), Err(SaslError::Gssapi(_))));
    // Unusable names.
    for bad in ["", "a\0b"] {
        assert!(matches!(GssapiServer::new(bad, Some(&kdc.server_keytab())), Err(SaslError::Gssapi(_))));
    }
    // Error messages name the principal, not key material.
    let err = GssapiServer::new("nobody/127.0.0.1@KAZOOTEST.ORG", Some(&kdc.server_keytab())).unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("nobody/127.0.0.1@KAZOOTEST.ORG"));
}

/// The JAAS file kazoo's harness writes for ZOOKEEPER_JAAS_AUTH=gssapi (kazoo 2.11
/// `kazoo/testing/harness.py`), and ZooKeeper's default id mapping of the result.
#[test]
fn kazoo_jaas_section_and_identity() {
    let Some(kdc) = kdc() else { return };
    let jaas = format!(
        r#"
Server {{
  com.sun.security.auth.module.Krb5LoginModule required
  debug=true
  isInitiator=false
  useKeyTab=true
  keyTab="{}"
  storeKey=true
  useTicketCache=false
  principal="zookeeper/127.0.0.1@KAZOOTEST.ORG";
}};"#,
        kdc.server_keytab().display()
    );
    let config = JaasConfig::parse(&jaas).unwrap();
    let section = config.section("Server").unwrap();
    let principal = section.option("principal").unwrap();
    let keytab = section.option("keyTab").map(Path::new);
    let mut s = GssapiServer::new(principal, keytab).unwrap();
    let mut c = client_for(SERVICE, pykerberos_flags());
    let Step::Success { token: None, authentication_id } = exchange(&mut s, &mut c, choose(0x01, CLIENT)).unwrap()
    else {
        panic!()
    };

    // The JVM's default realm comes from -Djava.security.krb5.conf; ours from KRB5_CONFIG.
    let realm = default_realm();
    assert_eq!(realm.as_deref(), Some("KAZOOTEST.ORG"));
    let mut opts = SaslIdOptions { rules: AuthToLocal::parse("DEFAULT", realm).unwrap(), ..Default::default() };
    assert_eq!(sasl_identity(&authentication_id, &opts).unwrap(), "client@KAZOOTEST.ORG");
    opts.remove_realm = true;
    assert_eq!(sasl_identity(&authentication_id, &opts).unwrap(), "client");
}

/// A SASL client in another process speaking the line protocol of the scripts in tests/interop.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl Peer {
    fn spawn(program: &str, args: &[&str]) -> Peer {
        let mut child = Command::new(program)
            .args(args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer { child, stdin, stdout }
    }

    fn step(&mut self, token: &[u8]) -> Result<Vec<u8>, String> {
        writeln!(self.stdin, "STEP {}", B64.encode(token)).unwrap();
        self.stdin.flush().unwrap();
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).unwrap();
        let mut words = reply.split_whitespace();
        match words.next() {
            Some("OK") => Ok(B64.decode(words.next().unwrap_or("")).unwrap()),
            _ => Err(reply),
        }
    }

    /// The whole exchange: the client's initial response, then server challenges and client
    /// answers until the server finishes. Err(text) says which side gave up and why.
    fn authenticate(&mut self, server: &mut GssapiServer) -> Result<String, String> {
        let mut token = self.step(b"").map_err(|e| format!("client: {e}"))?;
        for _ in 0..10 {
            match server.step(&token) {
                Ok(Step::Challenge(challenge)) => token = self.step(&challenge).map_err(|e| format!("client: {e}"))?,
                Ok(Step::Success { token: None, authentication_id }) => return Ok(authentication_id),
                Ok(other) => panic!("unexpected {other:?}"),
                Err(e) => return Err(format!("server: {e}")),
            }
        }
        panic!("no end to the exchange")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// kazoo's own client: pure-sasl's GSSAPI mechanism over pykerberos, with the ticket kinit put in
/// the private cache.
#[test]
fn pure_sasl_client() {
    if !works("python3", &["-c", "import puresasl, kerberos"]) {
        println!("skipping: python3 with pure-sasl and kerberos is not available (pip install pure-sasl kerberos)");
        return;
    }
    let Some(kdc) = kdc() else { return };
    // No authzid: pure-sasl sends the principal name as authzid anyway.
    let mut c = Peer::spawn("python3", &["pure_sasl_gssapi_client.py", "zookeeper", "127.0.0.1"]);
    assert_eq!(c.authenticate(&mut server(&kdc)), Ok(CLIENT.to_owned()));

    let mut c = Peer::spawn("python3", &["pure_sasl_gssapi_client.py", "zookeeper", "127.0.0.1", "super"]);
    let result = c.authenticate(&mut server(&kdc));
    assert!(result.as_ref().is_err_and(|e| e.contains("authorization id differs")), "{result:?}");

    // A service name whose key the server does not have.
    let mut c = Peer::spawn("python3", &["pure_sasl_gssapi_client.py", "other", "127.0.0.1"]);
    let result = c.authenticate(&mut server(&kdc));
    assert!(result.as_ref().is_err_and(|e| e.starts_with("server: ")), "{result:?}");
}

/// The JDK's GSSAPI client (what ZooKeeper's Java client uses), logged in from the client's key
/// table.
#[test]
fn jdk_client() {
    if !works("java", &["-version"]) {
        println!("skipping: no java on PATH");
        return;
    }
    let Some(kdc) = kdc() else { return };
    let krb5_conf = format!("-Djava.security.krb5.conf={}", kdc.path("krb5.conf").display());
    let keytab = kdc.path("client.keytab").display().to_string();
    let jdk = |authzid: Option<&str>| {
        let mut args = vec![krb5_conf.as_str(), "JdkGssapiClient.java", &keytab, CLIENT, "zookeeper", "127.0.0.1"];
        args.extend(authzid);
        Peer::spawn("java", &args)
    };
    assert_eq!(jdk(None).authenticate(&mut server(&kdc)), Ok(CLIENT.to_owned()));
    assert_eq!(jdk(Some(CLIENT)).authenticate(&mut server(&kdc)), Ok(CLIENT.to_owned()));
    let result = jdk(Some("super")).authenticate(&mut server(&kdc));
    assert!(result.as_ref().is_err_and(|e| e.contains("authorization id differs")), "{result:?}");
}
