//! Certificate verification that accepts X.509 v1 certificates.
//!
//! webpki (and so rustls' stock verifiers) only parse v3 certificates, but ZooKeeper deployments
//! built from the kazoo harness use v1 server and client certificates, which Java accepts. This
//! module builds and checks chains itself with x509-parser for parsing and webpki's ring
//! algorithms for signatures, and checks handshake signatures against the leaf's SPKI directly.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, SignatureScheme};
use rustls_pki_types::SignatureVerificationAlgorithm;
use rustls_pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use webpki::ring as algs;
use webpki::RawPublicKeyEntity;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};

use crate::TlsError;

/// Longest chain (leaf + issuers) we try to build, as a bound on hostile inputs.
const MAX_DEPTH: usize = 10;

/// Extensions we understand well enough to honour when marked critical on a leaf.
const KNOWN_CRITICAL: &[&str] = &[
    "2.5.29.14", // subjectKeyIdentifier
    "2.5.29.15", // keyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.19", // basicConstraints
    "2.5.29.32", // certificatePolicies
    "2.5.29.35", // authorityKeyIdentifier
    "2.5.29.37", // extKeyUsage
];

const OID_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const OID_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Server,
    Client,
}

fn other(msg: String) -> Error {
    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(TlsError::BadCertificate(msg)))))
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    X509Certificate::from_der(der).map(|(_, c)| c).map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// The trust anchors and the chain-building logic shared by the client and server verifiers.
#[derive(Debug)]
pub(crate) struct Chains {
    anchors: Vec<CertificateDer<'static>>,
    anchor_subjects: Vec<Vec<u8>>,
    hints: Vec<DistinguishedName>,
}

impl Chains {
    pub(crate) fn new(anchors: Vec<CertificateDer<'static>>) -> Result<Self, TlsError> {
        let mut subjects = Vec::with_capacity(anchors.len());
        for a in &anchors {
            let c = X509Certificate::from_der(a.as_ref())
                .map_err(|e| TlsError::BadCertificate(format!("unparsable trust anchor: {e}")))?
                .1;
            subjects.push(c.subject().as_raw().to_vec());
        }
        let hints = subjects.iter().map(|s| DistinguishedName::from(s.clone())).collect();
        Ok(Chains { anchors, anchor_subjects: subjects, hints })
    }

    /// Verifies `leaf` up to a trust anchor, using `intermediates` as the pool of issuers.
    pub(crate) fn verify(
        &self,
        leaf_der: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        purpose: Purpose,
    ) -> Result<(), Error> {
        let now = now.as_secs() as i64;
        let leaf = parse(leaf_der.as_ref())?;
        check_validity(&leaf, now)?;
        check_leaf_extensions(&leaf, purpose)?;
        // A leaf that is itself in the trust store is trusted outright, as in Java.
        if self.anchors.iter().any(|a| a.as_ref() == leaf_der.as_ref()) {
            return Ok(());
        }
        if self.anchors.is_empty() {
            return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        }
        let pool: Vec<X509Certificate<'_>> =
            intermediates.iter().take(MAX_DEPTH * 2).filter_map(|c| parse(c.as_ref()).ok()).collect();
        let mut path = vec![leaf];
        let mut last_err = Error::InvalidCertificate(CertificateError::UnknownIssuer);
        if self.extend(&mut path, &pool, now, &mut last_err) {
            Ok(())
        } else {
            Err(last_err)
        }
    }

    /// Depth-first search from the last certificate of `path` towards an anchor.
    fn extend<'a>(
        &'a self,
        path: &mut Vec<X509Certificate<'a>>,
        pool: &[X509Certificate<'a>],
        now: i64,
        err: &mut Error,
    ) -> bool {
        let Some(child) = path.last().cloned() else { return false };
        let child = &child;
        let issuer_name = child.issuer().as_raw();
        let below = path.len() - 1; // issuers between the leaf and the candidate
        for (i, subject) in self.anchor_subjects.iter().enumerate() {
            if subject.as_slice() != issuer_name {
                continue;
            }
            let Ok(anchor) = parse(self.anchors[i].as_ref()) else { continue };
            match check_issuer(&anchor, below, true).and_then(|_| check_signature(child, &anchor)) {
                Ok(()) => return true,
                Err(e) => *err = e,
            }
        }
        if path.len() >= MAX_DEPTH {
            return false;
        }
        for cand in pool {
            if cand.subject().as_raw() != issuer_name || path.iter().any(|p| p.as_raw() == cand.as_raw()) {
                continue;
            }
            let checked = check_validity(cand, now)
                .and_then(|_| check_issuer(cand, below, false))
                .and_then(|_| check_signature(child, cand));
            match checked {
                Ok(()) => {
                    path.push(cand.clone());
                    if self.extend(path, pool, now, err) {
                        return true;
                    }
                    path.pop();
                }
                Err(e) => *err = e,
            }
        }
        false
    }
}

fn check_validity(c: &X509Certificate<'_>, now: i64) -> Result<(), Error> {
    if now < c.validity().not_before.timestamp() {
        return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now > c.validity().not_after.timestamp() {
        return Err(Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(())
}

fn check_leaf_extensions(c: &X509Certificate<'_>, purpose: Purpose) -> Result<(), Error> {
    for ext in c.extensions() {
        let oid = ext.oid.to_id_string();
        if ext.critical && !KNOWN_CRITICAL.contains(&oid.as_str()) {
            return Err(other(format!("unsupported critical extension {oid} in {}", c.subject())));
        }
        if let ParsedExtension::ExtendedKeyUsage(eku) = ext.parsed_extension() {
            let ok = eku.any
                || match purpose {
                    Purpose::Server => eku.server_auth,
                    Purpose::Client => eku.client_auth,
                };
            if !ok {
                let want = if purpose == Purpose::Server { OID_SERVER_AUTH } else { OID_CLIENT_AUTH };
                return Err(other(format!("extended key usage of {} does not allow {want}", c.subject())));
            }
        }
    }
    Ok(())
}

/// May `issuer` sign certificates? A v3 issuer with extensions must say CA:TRUE (and keyCertSign if
/// it has keyUsage, and a path length allowing `below` intermediates); a v1 issuer is only accepted
/// when it is a trust anchor, as Java does.
fn check_issuer(issuer: &X509Certificate<'_>, below: usize, anchor: bool) -> Result<(), Error> {
    let has_ext = issuer.version() == X509Version::V3 && !issuer.extensions().is_empty();
    if !has_ext {
        return if anchor {
            Ok(())
        } else {
            Err(other(format!("intermediate {} is not a CA certificate (no extensions)", issuer.subject())))
        };
    }
    let bc = issuer.basic_constraints().map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    match bc {
        Some(bc) if bc.value.ca => {
            if let Some(max) = bc.value.path_len_constraint {
                if below > max as usize {
                    return Err(other(format!("path length constraint of {} exceeded", issuer.subject())));
                }
            }
        }
        _ => return Err(other(format!("{} is not a CA (basicConstraints CA:TRUE missing)", issuer.subject()))),
    }
    if let Ok(Some(ku)) = issuer.key_usage() {
        if !ku.value.key_cert_sign() {
            return Err(other(format!("{} may not sign certificates (keyUsage)", issuer.subject())));
        }
    }
    Ok(())
}

/// The webpki algorithms that may have produced a certificate signature with this OID; several
/// when the OID does not pin the curve, and the issuer's key then decides.
fn algorithms_for(oid: &str) -> Vec<&'static dyn SignatureVerificationAlgorithm> {
    match oid {
        "1.2.840.113549.1.1.11" => vec![algs::RSA_PKCS1_2048_8192_SHA256],
        "1.2.840.113549.1.1.12" => vec![algs::RSA_PKCS1_2048_8192_SHA384],
        "1.2.840.113549.1.1.13" => vec![algs::RSA_PKCS1_2048_8192_SHA512],
        "1.2.840.10045.4.3.2" => vec![algs::ECDSA_P256_SHA256, algs::ECDSA_P384_SHA256],
        "1.2.840.10045.4.3.3" => vec![algs::ECDSA_P384_SHA384, algs::ECDSA_P256_SHA384],
        "1.3.101.112" => vec![algs::ED25519],
        "1.2.840.113549.1.1.10" => vec![
            algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        ],
        _ => vec![],
    }
}

fn check_signature(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Result<(), Error> {
    let oid = child.signature_algorithm.algorithm.to_id_string();
    let candidates = algorithms_for(&oid);
    if candidates.is_empty() {
        return Err(other(format!("unsupported signature algorithm {oid} on {}", child.subject())));
    }
    let spki = SubjectPublicKeyInfoDer::from(issuer.tbs_certificate.subject_pki.raw);
    let key =
        RawPublicKeyEntity::try_from(&spki).map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let tbs = child.tbs_certificate.as_ref();
    let sig = child.signature_value.data.as_ref();
    if candidates.iter().any(|alg| key.verify_signature(*alg, tbs, sig).is_ok()) {
        Ok(())
    } else {
        Err(Error::InvalidCertificate(CertificateError::BadSignature))
    }
}

/// Checks a TLS handshake signature against the certificate's public key without webpki parsing
/// the certificate (which would refuse v1).
pub(crate) fn verify_handshake_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algs: &WebPkiSupportedAlgorithms,
    tls13: bool,
) -> Result<HandshakeSignatureValid, Error> {
    let c = parse(cert.as_ref())?;
    let spki = SubjectPublicKeyInfoDer::from(c.tbs_certificate.subject_pki.raw);
    if tls13 {
        return rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, algs);
    }
    let key =
        RawPublicKeyEntity::try_from(&spki).map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let candidates = algs
        .mapping
        .iter()
        .find(|(s, _)| *s == dss.scheme)
        .map(|(_, a)| *a)
        .ok_or(Error::PeerMisbehaved(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme))?;
    for alg in candidates {
        match key.verify_signature(*alg, message, dss.signature()) {
            Ok(()) => return Ok(HandshakeSignatureValid::assertion()),
            Err(webpki::Error::InvalidSignatureForPublicKey) => {
                return Err(Error::InvalidCertificate(CertificateError::BadSignature))
            }
            Err(_) => continue,
        }
    }
    Err(Error::InvalidCertificate(CertificateError::BadSignature))
}

/// ZooKeeper's ZKHostnameVerifier rule (no reverse DNS): with DNS/IP subjectAltNames present, an IP
/// must equal an IP SAN and a host name must match a DNS SAN (leftmost-label wildcard allowed);
/// only a certificate without such SANs has its CN compared instead.
pub fn cert_matches_name(cert: &CertificateDer<'_>, name: &str) -> Result<bool, TlsError> {
    let c = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| TlsError::BadCertificate(format!("unparsable certificate: {e}")))?
        .1;
    Ok(matches_name(&c, name))
}

fn matches_name(c: &X509Certificate<'_>, name: &str) -> bool {
    let host = name.trim().trim_start_matches('[').trim_end_matches(']');
    let ip: Option<IpAddr> = host.parse().ok();
    let mut sans: Vec<&GeneralName<'_>> = Vec::new();
    if let Ok(Some(ext)) = c.subject_alternative_name() {
        sans.extend(
            ext.value.general_names.iter().filter(|g| matches!(g, GeneralName::DNSName(_) | GeneralName::IPAddress(_))),
        );
    }
    if !sans.is_empty() {
        return sans.iter().any(|g| match (g, ip) {
            (GeneralName::IPAddress(bytes), Some(ip)) => san_ip(bytes) == Some(ip),
            (GeneralName::DNSName(pattern), None) => dns_matches(pattern, host),
            _ => false,
        });
    }
    // No SANs: compare the most specific CN (ZooKeeper takes the first CN of the RFC 2253 form,
    // which is the last one encoded).
    let cn = c.subject().iter_common_name().last().and_then(|a| a.as_str().ok());
    match (cn, ip) {
        (Some(cn), Some(ip)) => cn.trim().parse::<IpAddr>().ok() == Some(ip),
        (Some(cn), None) => dns_matches(cn, host),
        (None, _) => false,
    }
}

fn san_ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// Case-insensitive host name match; a `*` may appear once, in the leftmost label only, and
/// matches within that label (never across dots), as in ZooKeeper's strict matching.
fn dns_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || pattern.is_empty() {
        return false;
    }
    let (p_first, p_rest) = pattern.split_once('.').unwrap_or((pattern.as_str(), ""));
    let (h_first, h_rest) = host.split_once('.').unwrap_or((host.as_str(), ""));
    if p_rest.contains('*') {
        return false;
    }
    match p_first.split_once('*') {
        None => pattern == host,
        Some((prefix, suffix)) => {
            // A wildcard needs at least two labels after it, so "*.com" matches nothing.
            !p_rest.is_empty()
                && p_rest.contains('.')
                && !suffix.contains('*')
                && p_rest == h_rest
                && h_first.len() >= prefix.len() + suffix.len()
                && h_first.starts_with(prefix)
                && h_first.ends_with(suffix)
        }
    }
}

/// Verifies client certificates for a server: chain to the trust store, plus the optional
/// ensemble-member name check.
#[derive(Debug)]
pub(crate) struct ClientVerifier {
    pub(crate) chains: Chains,
    pub(crate) mandatory: bool,
    pub(crate) expected_names: Option<Vec<String>>,
    pub(crate) algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.chains.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.chains.verify(end_entity, intermediates, now, Purpose::Client)?;
        if let Some(names) = &self.expected_names {
            let leaf = parse(end_entity.as_ref())?;
            if !names.iter().any(|n| matches_name(&leaf, n)) {
                return Err(Error::InvalidCertificate(CertificateError::NotValidForName));
            }
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss, &self.algs, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss, &self.algs, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Verifies the server's certificate for a client; the SNI name rustls passes is ignored in
/// favour of the name given at construction (ZooKeeper checks the host/IP dialled, if anything).
#[derive(Debug)]
pub(crate) struct ServerVerifier {
    pub(crate) chains: Chains,
    pub(crate) expected_name: Option<String>,
    pub(crate) algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.chains.verify(end_entity, intermediates, now, Purpose::Server)?;
        if let Some(name) = &self.expected_name {
            let leaf = parse(end_entity.as_ref())?;
            if !matches_name(&leaf, name) {
                return Err(Error::InvalidCertificate(CertificateError::NotValidForName));
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss, &self.algs, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss, &self.algs, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::dns_matches;

    #[test]
    fn wildcards() {
        assert!(dns_matches("*.wild.example.org", "a.wild.example.org"));
        assert!(dns_matches("*.WILD.example.org", "A.wild.Example.org"));
        assert!(!dns_matches("*.wild.example.org", "a.b.wild.example.org"));
        assert!(!dns_matches("*.wild.example.org", "wild.example.org"));
        assert!(!dns_matches("*.org", "example.org"));
        assert!(!dns_matches("a.*.example.org", "a.b.example.org"));
        assert!(dns_matches("f*.example.org", "foo.example.org"));
        assert!(!dns_matches("f*.example.org", "bar.example.org"));
        assert!(dns_matches("localhost", "LOCALHOST"));
        assert!(!dns_matches("localhost", "localhost2"));
    }
}
