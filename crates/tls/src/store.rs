//! Loading ZooKeeper-style key and trust stores (PEM, PKCS#12, JKS).

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{jks, TlsError};

/// The store formats ZooKeeper accepts (BCFKS is not supported here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
    Jks,
}

impl StoreType {
    /// ZooKeeper's rule: an explicit type (case-insensitive "PEM", "PKCS12", "JKS") wins; otherwise the
    /// file suffix decides (.pem, .p12/.pfx, .jks) and any other suffix is an error rather than a guess.
    /// An empty explicit type counts as absent, as zoo.cfg values are often left blank.
    pub fn detect(explicit: Option<&str>, path: &Path) -> Result<StoreType, TlsError> {
        if let Some(t) = explicit.map(str::trim).filter(|t| !t.is_empty()) {
            return match t.to_ascii_uppercase().as_str() {
                "PEM" => Ok(StoreType::Pem),
                "PKCS12" => Ok(StoreType::Pkcs12),
                "JKS" => Ok(StoreType::Jks),
                _ => Err(TlsError::UnsupportedStoreType(t.to_owned())),
            };
        }
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("pem") => Ok(StoreType::Pem),
            Some("p12") | Some("pfx") => Ok(StoreType::Pkcs12),
            Some("jks") => Ok(StoreType::Jks),
            _ => Err(TlsError::UnknownStoreSuffix(path.to_path_buf())),
        }
    }
}

/// Where a store lives and how to open it (zoo.cfg's `ssl.keyStore.*` / `ssl.trustStore.*`).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreSpec {
    pub location: PathBuf,
    pub password: Option<String>,
    /// The configured type string, if any; see [`StoreType::detect`].
    pub store_type: Option<String>,
}

impl StoreSpec {
    /// A spec with the type auto-detected from the suffix.
    pub fn new(location: impl Into<PathBuf>, password: Option<&str>) -> Self {
        StoreSpec { location: location.into(), password: password.map(str::to_owned), store_type: None }
    }

    fn store_type(&self) -> Result<StoreType, TlsError> {
        StoreType::detect(self.store_type.as_deref(), &self.location)
    }

    /// Treats an empty password as none, as ZooKeeper does for blank config values.
    fn password(&self) -> Option<&str> {
        self.password.as_deref().filter(|p| !p.is_empty())
    }

    fn read(&self) -> Result<Vec<u8>, TlsError> {
        std::fs::read(&self.location).map_err(|source| TlsError::Io { path: self.location.clone(), source })
    }
}

/// Passwords must never reach logs, so Debug shows only whether one is set.
impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSpec")
            .field("location", &self.location)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("store_type", &self.store_type)
            .finish()
    }
}

/// A private key and its certificate chain, leaf first.
#[derive(Debug)]
pub struct KeyMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Loads the first private-key entry of a key store and its certificate chain.
pub fn load_key_store(spec: &StoreSpec) -> Result<KeyMaterial, TlsError> {
    let kind = spec.store_type()?;
    let data = spec.read()?;
    let path = spec.location.as_path();
    let km = match kind {
        StoreType::Pem => pem_key_store(&data, spec.password(), path)?,
        StoreType::Pkcs12 => p12_key_store(&data, spec.password(), path)?,
        StoreType::Jks => {
            let password = spec.password().ok_or_else(|| TlsError::PasswordRequired { path: path.to_path_buf() })?;
            jks::parse(&data, Some(password), path)?
                .into_iter()
                .find_map(|e| match e {
                    jks::JksEntry::PrivateKey { alias, pkcs8, chain } => Some({
                        log::debug!("{}: using key entry {alias:?}", path.display());
                        KeyMaterial {
                            chain: chain.into_iter().map(CertificateDer::from).collect(),
                            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)),
                        }
                    }),
                    jks::JksEntry::TrustedCert => None,
                })
                .ok_or_else(|| TlsError::NoPrivateKey { path: path.to_path_buf() })?
        }
    };
    if km.chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(km)
}

/// Loads every certificate of a trust store: JKS trusted-cert entries and the certificates of key
/// entries, every PEM CERTIFICATE block, every certificate of a PKCS#12 file.
pub fn load_trust_store(spec: &StoreSpec) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let kind = spec.store_type()?;
    let data = spec.read()?;
    let path = spec.location.as_path();
    let certs: Vec<CertificateDer<'static>> = match kind {
        StoreType::Pem => pem_certs(&data, path)?,
        StoreType::Pkcs12 => p12_archive(&data, spec.password(), path)?
            .certs
            .into_iter()
            .map(|b| CertificateDer::from(b.cert.as_der().to_vec()))
            .collect(),
        StoreType::Jks => {
            jks::certificates(&data, spec.password(), path)?.into_iter().map(CertificateDer::from).collect()
        }
    };
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(certs)
}

fn pem_certs(data: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(data).collect::<Result<Vec<_>, _>>().map_err(|e| TlsError::Malformed {
        path: path.to_path_buf(),
        format: "PEM",
        reason: e.to_string(),
    })
}

const ENC_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENC_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

fn pem_key_store(data: &[u8], password: Option<&str>, path: &Path) -> Result<KeyMaterial, TlsError> {
    let chain = pem_certs(data, path)?;
    let text = String::from_utf8_lossy(data);
    let key = if let Some(start) = text.find(ENC_BEGIN) {
        let end =
            text[start..].find(ENC_END).map(|e| start + e + ENC_END.len()).ok_or_else(|| TlsError::Malformed {
                path: path.to_path_buf(),
                format: "PEM",
                reason: "unterminated ENCRYPTED PRIVATE KEY block".into(),
            })?;
        let password = password.ok_or_else(|| TlsError::PasswordRequired { path: path.to_path_buf() })?;
        decrypt_pkcs8_pem(&text[start..end], password, path)?
    } else {
        PrivateKeyDer::from_pem_slice(data).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey { path: path.to_path_buf() },
            e => TlsError::Malformed { path: path.to_path_buf(), format: "PEM", reason: e.to_string() },
        })?
    };
    let chain = leaf_first(chain, &key);
    Ok(KeyMaterial { chain, key })
}

fn decrypt_pkcs8_pem(block: &str, password: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bad = |reason: String| TlsError::BadKey { path: path.to_path_buf(), reason };
    let (_, der) = pkcs8::der::pem::decode_vec(block.as_bytes()).map_err(|e| bad(format!("bad PEM: {e}")))?;
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
        .map_err(|e| bad(format!("bad EncryptedPrivateKeyInfo: {e}")))?;
    // A wrong password almost always surfaces as a padding error; PKCS#5 cannot tell them apart.
    let doc =
        info.decrypt(password).map_err(|_| bad("cannot decrypt (wrong password or unsupported cipher)".into()))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(doc.as_bytes().to_vec())))
}

fn p12_archive(data: &[u8], password: Option<&str>, path: &Path) -> Result<p12_keystore::Pkcs12Archive, TlsError> {
    p12_keystore::Pkcs12Archive::from_pkcs12(data, password.unwrap_or("")).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => TlsError::WrongPassword { path: path.to_path_buf() },
        e => TlsError::Malformed { path: path.to_path_buf(), format: "PKCS12", reason: e.to_string() },
    })
}

fn p12_key_store(data: &[u8], password: Option<&str>, path: &Path) -> Result<KeyMaterial, TlsError> {
    let archive = p12_archive(data, password, path)?;
    let bag = archive.keys.first().ok_or_else(|| TlsError::NoPrivateKey { path: path.to_path_buf() })?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bag.key.as_der().to_vec()));
    // Prefer the certificate tied to the key by localKeyId; otherwise find the leaf by public key.
    let mut certs: Vec<CertificateDer<'static>> = Vec::new();
    if let Some(id) = &bag.local_key_id {
        certs.extend(
            archive
                .certs
                .iter()
                .filter(|c| c.local_key_id.as_deref() == Some(id.0.as_slice()))
                .map(|c| CertificateDer::from(c.cert.as_der().to_vec())),
        );
    }
    for c in &archive.certs {
        let der = CertificateDer::from(c.cert.as_der().to_vec());
        if !certs.contains(&der) {
            certs.push(der);
        }
    }
    let chain = issuer_chain(leaf_first(certs, &key));
    Ok(KeyMaterial { chain, key })
}

/// Moves the certificate matching `key` to the front, so a store listing the CA first still
/// serves the right leaf. Leaves the order alone when no certificate can be matched.
fn leaf_first(mut certs: Vec<CertificateDer<'static>>, key: &PrivateKeyDer<'_>) -> Vec<CertificateDer<'static>> {
    let Some(spki) = key_spki(key) else { return certs };
    if let Some(i) = certs.iter().position(|c| cert_spki(c).as_deref() == Some(spki.as_slice())) {
        let leaf = certs.remove(i);
        certs.insert(0, leaf);
    }
    certs
}

/// Keeps the leaf, then follows issuer names through the rest; certificates not on the path
/// (other CAs bundled in the same file) are dropped, as the peer does not need them.
fn issuer_chain(certs: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    let names: Vec<Option<(Vec<u8>, Vec<u8>)>> = certs
        .iter()
        .map(|c| {
            X509Certificate::from_der(c.as_ref())
                .ok()
                .map(|(_, x)| (x.subject().as_raw().to_vec(), x.issuer().as_raw().to_vec()))
        })
        .collect();
    let mut out = Vec::new();
    let mut used = vec![false; certs.len()];
    let mut cur = 0;
    while cur < certs.len() && !used[cur] {
        used[cur] = true;
        out.push(certs[cur].clone());
        let Some((subject, issuer)) = &names[cur] else { break };
        if subject == issuer {
            break;
        }
        match (0..certs.len()).find(|&j| !used[j] && names[j].as_ref().is_some_and(|(s, _)| s == issuer)) {
            Some(j) => cur = j,
            None => break,
        }
    }
    out
}

pub(crate) fn cert_spki(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    X509Certificate::from_der(cert.as_ref()).ok().map(|(_, c)| c.tbs_certificate.subject_pki.raw.to_vec())
}

fn key_spki(key: &PrivateKeyDer<'_>) -> Option<Vec<u8>> {
    let signing = rustls::crypto::ring::default_provider().key_provider.load_private_key(key.clone_key()).ok()?;
    signing.public_key().map(|p| p.as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_follows_zookeeper() {
        let p = Path::new("/x/store.bin");
        assert_eq!(StoreType::detect(Some("pkcs12"), p).unwrap(), StoreType::Pkcs12);
        assert_eq!(StoreType::detect(Some("Jks"), Path::new("a.pem")).unwrap(), StoreType::Jks);
        assert_eq!(StoreType::detect(Some("PEM"), p).unwrap(), StoreType::Pem);
        assert!(matches!(StoreType::detect(Some("BCFKS"), p), Err(TlsError::UnsupportedStoreType(_))));
        assert!(matches!(StoreType::detect(None, p), Err(TlsError::UnknownStoreSuffix(_))));
        assert!(matches!(StoreType::detect(None, Path::new("a.crt")), Err(TlsError::UnknownStoreSuffix(_))));
        assert_eq!(StoreType::detect(None, Path::new("a.PEM")).unwrap(), StoreType::Pem);
        assert_eq!(StoreType::detect(Some(""), Path::new("a.p12")).unwrap(), StoreType::Pkcs12);
        assert_eq!(StoreType::detect(None, Path::new("a.pfx")).unwrap(), StoreType::Pkcs12);
        assert_eq!(StoreType::detect(None, Path::new("a.jks")).unwrap(), StoreType::Jks);
        let msg = StoreType::detect(None, p).unwrap_err().to_string();
        assert!(msg.contains("unable to auto-detect store file type") && msg.contains("store.bin"), "{msg}");
    }

    #[test]
    fn debug_redacts_password() {
        let s = StoreSpec::new("/k.jks", Some("hunter2"));
        let d = format!("{s:?}");
        assert!(!d.contains("hunter2") && d.contains("redacted"), "{d}");
    }
}
