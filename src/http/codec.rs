//! JSON shapes of the REST API and the conversions between them and the shared types:
//! paths, data encodings, stats and ACLs. Pure functions, unit-tested here.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::proto::types::{perms, Acl, Id, Stat};

use super::error::ApiError;

/// How node data is carried in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 text (the default for input; for output only when the bytes are valid UTF-8).
    #[default]
    Utf8,
    Base64,
    Hex,
}

impl Encoding {
    pub fn parse(s: &str) -> Result<Encoding, ApiError> {
        match s.to_ascii_lowercase().as_str() {
            "utf8" | "utf-8" | "text" => Ok(Encoding::Utf8),
            "base64" => Ok(Encoding::Base64),
            "hex" => Ok(Encoding::Hex),
            other => Err(ApiError::bad_request(format!("unknown encoding {other:?} (utf8, base64, hex)"))),
        }
    }
}

/// Encodes bytes for output. `wanted = None` picks UTF-8 when the bytes are valid UTF-8,
/// base64 otherwise. Returns the text and the encoding actually used.
pub fn encode_data(bytes: &[u8], wanted: Option<Encoding>) -> (String, Encoding) {
    let enc = match wanted {
        Some(e) => e,
        None if std::str::from_utf8(bytes).is_ok() => Encoding::Utf8,
        None => Encoding::Base64,
    };
    let text = match enc {
        Encoding::Utf8 => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            // Asked for text but it is not text: fall back rather than corrupt.
            Err(_) => return encode_data(bytes, Some(Encoding::Base64)),
        },
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
        Encoding::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    };
    (text, enc)
}

/// Decodes input data in the named encoding.
pub fn decode_data(text: &str, enc: Encoding) -> Result<Vec<u8>, ApiError> {
    match enc {
        Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| ApiError::bad_request(format!("invalid base64 data: {e}"))),
        Encoding::Hex => {
            let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            if clean.len() % 2 != 0 {
                return Err(ApiError::bad_request("invalid hex data: odd length"));
            }
            clean
                .chunks(2)
                .map(|pair| {
                    std::str::from_utf8(pair)
                        .ok()
                        .and_then(|s| u8::from_str_radix(s, 16).ok())
                        .ok_or_else(|| ApiError::bad_request("invalid hex data"))
                })
                .collect()
        }
    }
}

/// Checks a znode path by ZooKeeper's `PathUtils.validatePath` rules. With
/// `sequential`, a trailing `/` is allowed (the server appends the counter).
pub fn validate_path(path: &str, sequential: bool) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::bad_request(format!("invalid path {path:?}: {why}")));
    if !path.starts_with('/') {
        return bad("must start with /");
    }
    if path == "/" {
        return Ok(());
    }
    let body = if sequential && path.ends_with('/') { &path[..path.len() - 1] } else { path };
    if body.ends_with('/') {
        return bad("must not end with /");
    }
    for seg in body[1..].split('/') {
        if seg.is_empty() {
            return bad("empty segment");
        }
        if seg == "." || seg == ".." {
            return bad("relative segment");
        }
    }
    for c in path.chars() {
        let code = c as u32;
        if c == '\0'
            || (code > 0 && code <= 0x1f)
            || (0x7f..=0x9f).contains(&code)
            || (0xd800..=0xf8ff).contains(&code)
            || (0xfff0..=0xffff).contains(&code)
        {
            return bad("forbidden character");
        }
    }
    Ok(())
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The parent of a path (`/` for top-level nodes and for `/` itself).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// A session id the way ZooKeeper prints it (`0x...`); JSON numbers cannot hold every i64.
pub fn session_hex(id: i64) -> String {
    format!("0x{:x}", id as u64)
}

/// The 11 stat fields with ZooKeeper's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatJson {
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    /// Hex string ("0x0" when not ephemeral).
    pub ephemeral_owner: String,
    pub data_length: i32,
    pub num_children: i32,
}

impl From<&Stat> for StatJson {
    fn from(s: &Stat) -> Self {
        StatJson {
            czxid: s.czxid,
            mzxid: s.mzxid,
            pzxid: s.pzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion,
            aversion: s.aversion,
            ephemeral_owner: session_hex(s.ephemeral_owner),
            data_length: s.data_length,
            num_children: s.num_children,
        }
    }
}

/// ACL permissions as zkCli prints them (`cdrwa` order).
pub fn perms_text(p: i32) -> String {
    [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')]
        .iter()
        .filter(|(bit, _)| p & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// Permissions on input: letters (`"cdrwa"`, any order) or the bit mask as a number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PermsIn {
    Bits(i32),
    Letters(String),
}

impl PermsIn {
    pub fn bits(&self) -> Result<i32, ApiError> {
        match self {
            PermsIn::Bits(b) if (0..=perms::ALL).contains(b) => Ok(*b),
            PermsIn::Bits(b) => Err(ApiError::bad_request(format!("invalid permission bits {b}"))),
            PermsIn::Letters(s) => s.chars().try_fold(0, |acc, c| {
                let bit = match c.to_ascii_lowercase() {
                    'c' => perms::CREATE,
                    'd' => perms::DELETE,
                    'r' => perms::READ,
                    'w' => perms::WRITE,
                    'a' => perms::ADMIN,
                    _ => return Err(ApiError::bad_request(format!("invalid permission letter {c:?}"))),
                };
                Ok(acc | bit)
            }),
        }
    }
}

/// One ACL entry on output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AclJson {
    pub scheme: String,
    pub id: String,
    /// Letters, `cdrwa` order.
    pub perms: String,
}

impl From<&Acl> for AclJson {
    fn from(a: &Acl) -> Self {
        AclJson { scheme: a.id.scheme.clone(), id: a.id.id.clone(), perms: perms_text(a.perms) }
    }
}

/// One ACL entry on input.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AclIn {
    pub scheme: String,
    pub id: String,
    pub perms: PermsIn,
}

/// Converts input ACLs; an empty or missing list means OPEN_ACL_UNSAFE.
pub fn acl_from_json(list: Option<&[AclIn]>) -> Result<Vec<Acl>, ApiError> {
    match list {
        None | Some([]) => Ok(Acl::open_unsafe()),
        Some(items) => items
            .iter()
            .map(|a| {
                if a.scheme.is_empty() {
                    return Err(ApiError::bad_request("ACL scheme must not be empty"));
                }
                // `user:x` is how a digest is shown to a caller without ADMIN (an export
                // made by one, say); stored, it would lock the user out of the node.
                if a.scheme == "digest" && a.id.rsplit_once(':').is_some_and(|(_, hash)| hash == "x") {
                    return Err(ApiError::bad_request(format!(
                        "ACL digest:{} is a masked digest (shown to callers without ADMIN) and cannot be written",
                        a.id
                    )));
                }
                Ok(Acl { perms: a.perms.bits()?, id: Id::new(a.scheme.clone(), a.id.clone()) })
            })
            .collect(),
    }
}

pub fn acl_to_json(acl: &[Acl]) -> Vec<AclJson> {
    acl.iter().map(AclJson::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_zookeeper_rules() {
        assert!(validate_path("/", false).is_ok());
        assert!(validate_path("/a/b-c.d", false).is_ok());
        assert!(validate_path("a", false).is_err());
        assert!(validate_path("/a/", false).is_err());
        assert!(validate_path("/a/", true).is_ok());
        assert!(validate_path("/a//b", false).is_err());
        assert!(validate_path("/a/../b", false).is_err());
        assert!(validate_path("/a/./b", false).is_err());
        assert!(validate_path("/a\u{0}b", false).is_err());
        assert!(validate_path("/caf\u{e9}", false).is_ok());
    }

    #[test]
    fn data_round_trips_in_every_encoding() {
        let bytes = vec![0u8, 1, 0xff, b'a'];
        for enc in [Encoding::Base64, Encoding::Hex] {
            let (text, used) = encode_data(&bytes, Some(enc));
            assert_eq!(used, enc);
            assert_eq!(decode_data(&text, enc).unwrap(), bytes);
        }
        assert_eq!(encode_data(b"hello", None), ("hello".to_string(), Encoding::Utf8));
        // Binary data asked as text falls back to base64 instead of being mangled.
        assert_eq!(encode_data(&[0xff], Some(Encoding::Utf8)).1, Encoding::Base64);
        assert!(decode_data("abc", Encoding::Hex).is_err());
        assert!(decode_data("zz", Encoding::Hex).is_err());
        assert!(decode_data("!!", Encoding::Base64).is_err());
    }

    #[test]
    fn perms_parse_and_print_like_zkcli() {
        assert_eq!(perms_text(perms::ALL), "cdrwa");
        assert_eq!(perms_text(perms::READ | perms::WRITE), "rw");
        assert_eq!(PermsIn::Letters("ar".into()).bits().unwrap(), perms::READ | perms::ADMIN);
        assert_eq!(PermsIn::Bits(31).bits().unwrap(), 31);
        assert!(PermsIn::Letters("x".into()).bits().is_err());
        assert!(PermsIn::Bits(64).bits().is_err());
    }

    #[test]
    fn parents_and_joins() {
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(session_hex(-1), "0xffffffffffffffff");
    }
}
