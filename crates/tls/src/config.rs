//! Building rustls configs from ZooKeeper-style TLS settings.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use log::warn;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme, SupportedProtocolVersion};

use crate::store::{cert_spki, load_key_store, load_trust_store, StoreSpec};
use crate::verify::{Chains, ClientVerifier, ServerVerifier};
use crate::TlsError;

/// Whether a server asks for client certificates (zoo.cfg `ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Do not ask for a certificate.
    None,
    /// Ask; accept a client that sends none, but refuse one whose certificate fails verification.
    Want,
    /// Require a valid certificate (ZooKeeper's default).
    #[default]
    Need,
}

/// ZooKeeper's parsing: "none"/"want"/"need" in any case; empty means the default, Need.
impl FromStr for ClientAuth {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "need" => Ok(ClientAuth::Need),
            "want" => Ok(ClientAuth::Want),
            "none" => Ok(ClientAuth::None),
            other => Err(TlsError::InvalidClientAuth(other.to_owned())),
        }
    }
}

/// One side's TLS settings: `ssl.*` for client connections or `ssl.quorum.*` between members.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub key_store: StoreSpec,
    /// Certificates used to verify peers. `None` means no peer certificate can be verified: a
    /// server with `Want`/`Need` then refuses every client certificate (Want still admits clients
    /// that send none), and a client refuses every server.
    pub trust_store: Option<StoreSpec>,
    pub client_auth: ClientAuth,
    /// JDK protocol names ("TLSv1.2", "TLSv1.3"); `None` means both. Unknown names are ignored with
    /// a warning, as older ZooKeeper configs list TLSv1/TLSv1.1 that rustls never speaks.
    pub protocols: Option<Vec<String>>,
    /// IANA/JDK cipher suite names; `None` means rustls' ring defaults. Unknown names are ignored
    /// with a warning.
    pub cipher_suites: Option<Vec<String>>,
    /// For connections between ensemble members: when set, the peer's certificate must match one of
    /// these host names/IPs (see [`crate::cert_matches_name`]).
    pub expected_peer_names: Option<Vec<String>>,
}

impl TlsSettings {
    /// Settings with defaults for everything but the key and trust stores.
    pub fn new(key_store: StoreSpec, trust_store: Option<StoreSpec>) -> Self {
        TlsSettings {
            key_store,
            trust_store,
            client_auth: ClientAuth::Need,
            protocols: None,
            cipher_suites: None,
            expected_peer_names: None,
        }
    }
}

/// The ring provider restricted to the configured cipher suites.
fn provider(settings: &TlsSettings) -> Result<Arc<CryptoProvider>, TlsError> {
    let base = rustls::crypto::ring::default_provider();
    let Some(names) = &settings.cipher_suites else { return Ok(Arc::new(base)) };
    let all = base.cipher_suites.clone();
    let mut chosen = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let found = all.iter().find(|s| suite_name(s).is_some_and(|sn| sn.eq_ignore_ascii_case(name)));
        match found {
            Some(s) if !chosen.contains(s) => chosen.push(*s),
            Some(_) => {}
            None => warn!("ignoring unsupported cipher suite {name:?}"),
        }
    }
    if chosen.is_empty() {
        return Err(TlsError::NoUsable { what: "cipher suites", names: names.clone() });
    }
    Ok(Arc::new(CryptoProvider { cipher_suites: chosen, ..base }))
}

/// The IANA name (which the JDK uses); rustls spells TLS 1.3 suites "TLS13_...".
fn suite_name(s: &rustls::SupportedCipherSuite) -> Option<String> {
    let n = s.suite().as_str()?;
    Some(match n.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => n.to_owned(),
    })
}

fn versions(settings: &TlsSettings) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let Some(names) = &settings.protocols else {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    };
    let mut out: Vec<&'static SupportedProtocolVersion> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let v = match name {
            "TLSv1.3" => &rustls::version::TLS13,
            "TLSv1.2" => &rustls::version::TLS12,
            _ => {
                warn!("ignoring unsupported TLS protocol {name:?}");
                continue;
            }
        };
        if !out.iter().any(|o| o.version == v.version) {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(TlsError::NoUsable { what: "protocols", names: names.clone() });
    }
    Ok(out)
}

fn certified_key(spec: &StoreSpec, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
    let km = load_key_store(spec)?;
    let bad = |reason: String| TlsError::BadKey { path: spec.location.clone(), reason };
    let key = provider.key_provider.load_private_key(km.key).map_err(|e| bad(format!("unsupported key: {e}")))?;
    // rustls' own consistency check parses the leaf with webpki, which refuses v1; compare SPKIs here.
    if let (Some(k), Some(c)) = (key.public_key(), km.chain.first().and_then(cert_spki)) {
        if k.as_ref() != c.as_slice() {
            return Err(bad("the private key does not match the first certificate".into()));
        }
    }
    Ok(Arc::new(CertifiedKey::new(km.chain, key)))
}

fn chains(settings: &TlsSettings) -> Result<Chains, TlsError> {
    let anchors = match &settings.trust_store {
        Some(spec) => load_trust_store(spec)?,
        None => Vec::new(),
    };
    Chains::new(anchors)
}

/// Serves one fixed chain without rustls parsing the leaf (webpki would refuse a v1 certificate).
struct FixedCert(Arc<CertifiedKey>);

impl fmt::Debug for FixedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedCert").field("chain_len", &self.0.cert.len()).finish()
    }
}

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ResolvesClientCert for FixedCert {
    fn resolve(&self, _hints: &[&[u8]], sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        // Offer the certificate only if our key can sign with a scheme the server accepts.
        self.0.key.choose_scheme(sigschemes).map(|_| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Builds a server config: serves the key store's chain, verifies clients per `client_auth`
/// against the trust store (and `expected_peer_names`, if set).
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider(settings)?;
    let versions = versions(settings)?;
    let key = certified_key(&settings.key_store, &provider)?;
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => builder.with_client_cert_verifier(Arc::new(ClientVerifier {
            chains: chains(settings)?,
            mandatory: auth == ClientAuth::Need,
            expected_names: settings.expected_peer_names.clone(),
            algs: provider.signature_verification_algorithms,
        })),
    };
    Ok(Arc::new(builder.with_cert_resolver(Arc::new(FixedCert(key)))))
}

/// Builds a client config: presents the key store's chain as the client certificate and verifies
/// the server against the trust store with the same v1-tolerant verifier. `server_name_check` is the
/// host/IP dialled, checked like ZooKeeper's ZKHostnameVerifier; `None` skips the name check.
pub fn client_config(settings: &TlsSettings, server_name_check: Option<String>) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider(settings)?;
    let versions = versions(settings)?;
    let key = certified_key(&settings.key_store, &provider)?;
    let verifier = ServerVerifier {
        chains: chains(settings)?,
        expected_name: server_name_check,
        algs: provider.signature_verification_algorithms,
    };
    let cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(FixedCert(key)));
    Ok(Arc::new(cfg))
}
