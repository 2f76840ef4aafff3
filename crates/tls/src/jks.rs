//! Reader for Sun's JKS key store format (magic 0xFEEDFEED, versions 1 and 2).
//!
//! ZooKeeper deployments (and the kazoo test harness) commonly ship JKS files, and no maintained
//! Rust crate reads them, so this is a small, bounds-checked reader of just what we need:
//! private-key entries (Sun KeyProtector encryption) and trusted-certificate entries.

use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use crate::TlsError;

const JKS_MAGIC: u32 = 0xFEED_FEED;
const JCEKS_MAGIC: u32 = 0xCECE_CECE;
/// OID 1.3.6.1.4.1.42.2.17.1.1 (Sun's proprietary KeyProtector), DER-encoded value bytes.
const KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];
/// Caps entry counts so a hostile header cannot make us loop or allocate for long.
const MAX_ENTRIES: u32 = 100_000;
const DIGEST_LEN: usize = 20;

/// One entry of a JKS store.
pub(crate) enum JksEntry {
    PrivateKey {
        alias: String,
        pkcs8: Vec<u8>,
        chain: Vec<Vec<u8>>,
    },
    /// Trusted certificates are read through [`certificates`]; here they only need skipping.
    TrustedCert,
}

impl JksEntry {
    #[cfg(test)]
    fn alias(&self) -> &str {
        match self {
            JksEntry::PrivateKey { alias, .. } => alias,
            JksEntry::TrustedCert => "",
        }
    }
}

/// Private-key entries still encrypted: we only decrypt the one we use.
enum RawEntry {
    PrivateKey { alias: String, protected: Vec<u8>, chain: Vec<Vec<u8>> },
    TrustedCert,
}

/// Reads the magic, version and entry count every key store starts with.
fn read_header(r: &mut Reader<'_>, path: &Path) -> Result<(u32, u32), TlsError> {
    let magic = r.u32()?;
    if magic == JCEKS_MAGIC {
        return Err(TlsError::JceksNotSupported { path: path.to_path_buf() });
    }
    if magic != JKS_MAGIC {
        return Err(r.err(format!("bad magic 0x{magic:08x}, not a Java key store")));
    }
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(r.err(format!("unsupported version {version}")));
    }
    let count = r.u32()?;
    if count > MAX_ENTRIES {
        return Err(r.err(format!("implausible entry count {count}")));
    }
    Ok((version, count))
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: impl Into<String>) -> TlsError {
        TlsError::Malformed { path: self.path.to_path_buf(), format: "JKS", reason: reason.into() }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TlsError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            self.err(format!("truncated: wanted {n} bytes at offset {} of {}", self.pos, self.data.len()))
        })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, TlsError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, TlsError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, TlsError> {
        let hi = self.u32()? as u64;
        let lo = self.u32()? as u64;
        Ok(hi << 32 | lo)
    }

    /// Java's DataInput.readUTF: u16 length then "modified UTF-8"; decoded leniently since
    /// aliases only appear in messages.
    fn utf(&mut self) -> Result<String, TlsError> {
        let n = self.u16()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    fn blob(&mut self) -> Result<Vec<u8>, TlsError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    fn cert(&mut self, version: u32) -> Result<Vec<u8>, TlsError> {
        if version == 2 {
            let kind = self.utf()?;
            if kind != "X.509" {
                return Err(self.err(format!("unsupported certificate type {kind:?}")));
            }
        }
        self.blob()
    }
}

/// Java's char[] password as big-endian UTF-16 bytes, the form both JKS digests use.
fn password_bytes(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(|c| c.to_be_bytes()).collect()
}

/// Parses a JKS file, verifying its integrity digest when a password is given (Java skips the
/// check without one, which is how trust stores are often opened). Private keys are decrypted
/// with `password` too, since ZooKeeper uses one password for store and key.
pub(crate) fn parse(data: &[u8], password: Option<&str>, path: &Path) -> Result<Vec<JksEntry>, TlsError> {
    let mut r = Reader { data, pos: 0, path };
    let (version, count) = read_header(&mut r, path)?;
    let mut raw = Vec::new();
    for _ in 0..count {
        let tag = r.u32()?;
        let alias = r.utf()?;
        let _timestamp = r.u64()?;
        match tag {
            1 => {
                let protected = r.blob()?;
                let n = r.u32()?;
                if n > MAX_ENTRIES {
                    return Err(r.err(format!("implausible chain length {n} for {alias:?}")));
                }
                let chain = (0..n).map(|_| r.cert(version)).collect::<Result<Vec<_>, _>>()?;
                raw.push(RawEntry::PrivateKey { alias, protected, chain });
            }
            2 => {
                let _ = r.cert(version)?;
                raw.push(RawEntry::TrustedCert);
            }
            3 => return Err(r.err(format!("secret-key entry {alias:?} (a JCEKS feature) is not supported"))),
            t => return Err(r.err(format!("unknown entry tag {t}"))),
        }
    }
    let body_end = r.pos;
    let stored = r.take(DIGEST_LEN)?;
    if r.pos != data.len() {
        return Err(r.err(format!("{} unexpected bytes after the integrity digest", data.len() - r.pos)));
    }
    let Some(password) = password else {
        return raw
            .into_iter()
            .map(|e| match e {
                RawEntry::TrustedCert => Ok(JksEntry::TrustedCert),
                RawEntry::PrivateKey { .. } => Err(TlsError::PasswordRequired { path: path.to_path_buf() }),
            })
            .collect();
    };
    let pw = password_bytes(password);
    let mut h = Sha1::new();
    h.update(&pw);
    h.update(b"Mighty Aphrodite");
    h.update(&data[..body_end]);
    if h.finalize().as_slice() != stored {
        return Err(TlsError::WrongPassword { path: path.to_path_buf() });
    }
    raw.into_iter()
        .map(|e| match e {
            RawEntry::TrustedCert => Ok(JksEntry::TrustedCert),
            RawEntry::PrivateKey { alias, protected, chain } => {
                let pkcs8 = unprotect_key(&protected, &pw, path, &alias)?;
                Ok(JksEntry::PrivateKey { alias, pkcs8, chain })
            }
        })
        .collect()
}

/// Trusted certificates only, without decrypting keys: a trust store needs no key password,
/// but it still gets the integrity check when a password is configured.
pub(crate) fn certificates(data: &[u8], password: Option<&str>, path: &Path) -> Result<Vec<Vec<u8>>, TlsError> {
    // Certificates of key entries count too (ZooKeeper trusts them), and reading them must not
    // need the key decrypted.
    let entries = parse_unverified(data, path)?;
    if let Some(password) = password {
        verify_digest(data, password, path)?;
    }
    Ok(entries)
}

fn parse_unverified(data: &[u8], path: &Path) -> Result<Vec<Vec<u8>>, TlsError> {
    let mut r = Reader { data, pos: 0, path };
    let (version, count) = read_header(&mut r, path)?;
    let mut certs = Vec::new();
    for _ in 0..count {
        let tag = r.u32()?;
        let alias = r.utf()?;
        let _timestamp = r.u64()?;
        match tag {
            1 => {
                let _protected = r.blob()?;
                let n = r.u32()?;
                if n > MAX_ENTRIES {
                    return Err(r.err(format!("implausible chain length {n} for {alias:?}")));
                }
                for _ in 0..n {
                    certs.push(r.cert(version)?);
                }
            }
            2 => certs.push(r.cert(version)?),
            3 => return Err(r.err(format!("secret-key entry {alias:?} (a JCEKS feature) is not supported"))),
            t => return Err(r.err(format!("unknown entry tag {t}"))),
        }
    }
    let _ = r.take(DIGEST_LEN)?;
    if r.pos != data.len() {
        return Err(r.err(format!("{} unexpected bytes after the integrity digest", data.len() - r.pos)));
    }
    Ok(certs)
}

fn verify_digest(data: &[u8], password: &str, path: &Path) -> Result<(), TlsError> {
    let body_end = data.len().checked_sub(DIGEST_LEN).ok_or_else(|| TlsError::Malformed {
        path: path.to_path_buf(),
        format: "JKS",
        reason: "too short".into(),
    })?;
    let mut h = Sha1::new();
    h.update(password_bytes(password));
    h.update(b"Mighty Aphrodite");
    h.update(&data[..body_end]);
    if h.finalize().as_slice() != &data[body_end..] {
        return Err(TlsError::WrongPassword { path: path.to_path_buf() });
    }
    Ok(())
}

/// Undoes Sun's KeyProtector: an EncryptedPrivateKeyInfo whose data is
/// salt(20) ‖ (PKCS#8 XOR SHA-1 keystream) ‖ SHA1(password ‖ PKCS#8).
fn unprotect_key(epki: &[u8], pw: &[u8], path: &Path, alias: &str) -> Result<Vec<u8>, TlsError> {
    let bad =
        |reason: String| TlsError::BadKey { path: PathBuf::from(path), reason: format!("entry {alias:?}: {reason}") };
    let (oid, blob) = parse_epki(epki).ok_or_else(|| bad("malformed EncryptedPrivateKeyInfo".into()))?;
    if oid != KEY_PROTECTOR_OID {
        return Err(bad("key is not protected with Sun's KeyProtector (unsupported algorithm)".into()));
    }
    if blob.len() < 2 * DIGEST_LEN {
        return Err(bad("protected key too short".into()));
    }
    let (salt, rest) = blob.split_at(DIGEST_LEN);
    let (cipher, check) = rest.split_at(rest.len() - DIGEST_LEN);
    let mut plain = Vec::with_capacity(cipher.len());
    let mut digest: Vec<u8> = salt.to_vec();
    for chunk in cipher.chunks(DIGEST_LEN) {
        let mut h = Sha1::new();
        h.update(pw);
        h.update(&digest);
        digest = h.finalize().to_vec();
        plain.extend(chunk.iter().zip(&digest).map(|(c, k)| c ^ k));
    }
    let mut h = Sha1::new();
    h.update(pw);
    h.update(&plain);
    if h.finalize().as_slice() != check {
        return Err(TlsError::WrongPassword { path: path.to_path_buf() });
    }
    Ok(plain)
}

/// Minimal DER walk of EncryptedPrivateKeyInfo ::= SEQUENCE { SEQUENCE { OID, params? }, OCTET STRING }.
fn parse_epki(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, outer, _) = der_tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, alg, rest) = der_tlv(outer)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = der_tlv(alg)?;
    if tag != 0x06 {
        return None;
    }
    let (tag, data, _) = der_tlv(rest)?;
    if tag != 0x04 {
        return None;
    }
    Some((oid, data))
}

/// Returns (tag, contents, remainder) of one DER TLV with a definite length.
fn der_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)? as usize;
    let (len, hdr) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = b.get(2..2 + n)?;
        (bytes.iter().fold(0usize, |a, &x| a << 8 | x as usize), 2 + n)
    };
    let end = hdr.checked_add(len)?;
    Some((tag, b.get(hdr..end)?, b.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> (Vec<u8>, PathBuf) {
        let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name);
        (std::fs::read(&p).unwrap(), p)
    }

    #[test]
    fn pyjks_keystore_reads() {
        let (d, p) = fixture("keystore.jks");
        let e = parse(&d, Some("apassword"), &p).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].alias(), "server cert");
        let JksEntry::PrivateKey { pkcs8, chain, .. } = &e[0] else { panic!("not a key entry") };
        assert_eq!(chain.len(), 1);
        assert_eq!(pkcs8[0], 0x30);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let (d, p) = fixture("keystore.jks");
        for n in 0..d.len() {
            assert!(parse(&d[..n], Some("apassword"), &p).is_err(), "truncated at {n} accepted");
            assert!(certificates(&d[..n], None, &p).is_err(), "truncated at {n} accepted");
        }
    }

    #[test]
    fn flipped_bytes_never_panic() {
        let (d, p) = fixture("keystore.jks");
        for i in 0..d.len() {
            let mut t = d.clone();
            t[i] ^= 0xff;
            assert!(parse(&t, Some("apassword"), &p).is_err(), "tampered byte {i} accepted");
            let _ = certificates(&t, None, &p);
        }
    }
}
