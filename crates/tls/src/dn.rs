//! Java's `X500Principal.getName()` (RFC 2253) rendering of a certificate subject.
//!
//! ZooKeeper's x509 auth provider uses exactly this string as the client's ACL id, so existing
//! ACLs only keep working if we reproduce Java's output byte for byte, quirks included.

use rustls_pki_types::CertificateDer;
use x509_parser::der_parser::asn1_rs::{Any, Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::TlsError;

/// Attribute types Java names with a keyword in RFC 2253 output; all others print as dotted OIDs.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// Java's `X500Principal.getName()` (RFC 2253) rendering of the certificate's subject; used as the
/// x509 ACL identity.
pub fn java_subject_dn(cert: &CertificateDer<'_>) -> Result<String, TlsError> {
    let (_, c) = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| TlsError::BadCertificate(format!("unparsable certificate: {e}")))?;
    java_rfc2253(c.subject())
}

/// Renders any X.500 name the way Java's `X500Name.getRFC2253Name()` does.
pub(crate) fn java_rfc2253(name: &X509Name<'_>) -> Result<String, TlsError> {
    // Java prints RDNs last-to-first, and the AVAs of a multi-valued RDN in encoded order.
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| rdn.iter().map(|ava| render_ava(&ava.attr_type().to_id_string(), ava.attr_value())).collect())
        .map(|avas: Result<Vec<String>, TlsError>| avas.map(|a| a.join("+")))
        .collect::<Result<_, _>>()?;
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

fn render_ava(oid: &str, value: &Any<'_>) -> Result<String, TlsError> {
    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
    match (keyword, decode_string(value)) {
        (Some(k), Some(s)) => Ok(format!("{k}={}", escape(&s))),
        (k, _) => {
            // Unknown type or non-string value: '#' + hex of the value's full DER encoding.
            let der = value.to_der_vec().map_err(|e| TlsError::BadCertificate(format!("bad name attribute: {e}")))?;
            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
            Ok(format!("{}=#{hex}", k.unwrap_or(oid)))
        }
    }
}

/// The string types Java's AVA treats as text (its `isDerString(value, false)`), decoded as Java does.
fn decode_string(v: &Any<'_>) -> Option<String> {
    let data = v.data;
    match v.tag() {
        Tag::Utf8String => std::str::from_utf8(data).ok().map(str::to_owned),
        // Java decodes these as single-byte characters.
        Tag::PrintableString | Tag::Ia5String | Tag::T61String | Tag::GeneralString => {
            Some(data.iter().map(|&b| b as char).collect())
        }
        Tag::BmpString => {
            if data.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = data.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// Java's AVA.toRFC2253String escaping: a backslash before `, = + < > # ; " \` anywhere, NUL as
/// `\00`, and before every leading and trailing space or CR.
fn escape(s: &str) -> String {
    const ESCAPEES: &str = ",=+<>#;\"\\";
    let mut body: Vec<char> = Vec::with_capacity(s.len());
    for c in s.chars() {
        if c == '\0' {
            body.extend(['\\', '0', '0']);
        } else {
            if ESCAPEES.contains(c) {
                body.push('\\');
            }
            body.push(c);
        }
    }
    let ws = |c: &char| *c == ' ' || *c == '\r';
    let lead = body.iter().take_while(|c| ws(c)).count();
    let trail = body.len() - body.iter().rev().take_while(|c| ws(c)).count();
    let mut out = String::with_capacity(body.len() + 4);
    for (i, c) in body.into_iter().enumerate() {
        if i < lead || i >= trail {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escaping_matches_java() {
        // Expected values printed by Java 17's X500Principal for the same strings.
        assert_eq!(escape("a#b=c"), "a\\#b\\=c");
        assert_eq!(escape("  two lead"), "\\ \\ two lead");
        assert_eq!(escape("x\r"), "x\\\r");
        assert_eq!(escape("#x#"), "\\#x\\#");
        assert_eq!(escape("tab\ttab"), "tab\ttab");
        assert_eq!(escape("é,"), "é\\,");
        assert_eq!(escape("   "), "\\ \\ \\ ");
        assert_eq!(escape(""), "");
    }
}
