//! Path rules of ZooKeeper's `PathUtils.validatePath` and the looser checks
//! some ops use instead (delete, reads).
//!
//! ZooKeeper validates UTF-16 code units, so every character outside the Basic
//! Multilingual Plane (it is a surrogate pair in Java) is rejected, as is the
//! BMP private-use area. Clients rely on getting BadArguments for these.

use crate::proto::types::ErrorCode;

/// Nodes that exist at boot and can never be deleted (`DataTree.isSpecialPath`).
pub const SPECIAL_PATHS: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// `PathUtils.validatePath`, mapped to the BadArguments a client observes.
pub fn validate_path(path: &str) -> Result<(), ErrorCode> {
    if is_valid_path(path) {
        Ok(())
    } else {
        Err(ErrorCode::BadArguments)
    }
}

/// True when `path` passes `PathUtils.validatePath`.
pub fn is_valid_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    rest.is_empty() || rest.split('/').all(is_valid_segment)
}

/// True when `name` may be one component of a valid path: not empty, not `.` or
/// `..`, no `/` and no character `validatePath` refuses.
pub fn is_valid_segment(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !has_forbidden_char(name)
}

fn has_forbidden_char(s: &str) -> bool {
    if s.is_ascii() {
        // The common case, without decoding characters.
        s.bytes().any(|b| b <= 0x1F || b == 0x7F)
    } else {
        s.chars().any(is_forbidden_char)
    }
}

/// Characters `validatePath` refuses, seen as Java UTF-16 code units.
fn is_forbidden_char(c: char) -> bool {
    let u = c as u32;
    u <= 0x1F
        || (0x7F..=0x9F).contains(&u)
        || (0xD800..=0xF8FF).contains(&u)
        || (0xFFF0..=0xFFFF).contains(&u)
        // Outside the BMP: a surrogate pair in Java, rejected by the range above.
        || u > 0xFFFF
}

/// Splits at the last `/` into (parent, child name), like ZooKeeper's
/// `lastIndexOf('/')`. The parent of `/a` is the empty string, which names the
/// root. `None` when there is no `/` at all.
pub fn split_parent(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    Some((&path[..i], &path[i + 1..]))
}

/// Maps ZooKeeper's alias `""` for the root to `/`.
pub fn canonical(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// The parent path of a create (`validatePathForCreate`): it needs a `/` and no
/// NUL; the rest of validation happens after the sequential suffix is added.
pub(crate) fn create_parent(path: &str) -> Result<&str, ErrorCode> {
    match split_parent(path) {
        Some((parent, _)) if !path.contains('\0') => Ok(parent),
        _ => Err(ErrorCode::BadArguments),
    }
}

/// The parent path of a delete (`getParentPathAndValidate`): needs a `/`, no NUL,
/// and the boot-time special nodes may not be deleted.
pub(crate) fn delete_parent(path: &str) -> Result<&str, ErrorCode> {
    if SPECIAL_PATHS.contains(&path) {
        return Err(ErrorCode::BadArguments);
    }
    create_parent(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for p in ["/", "/a", "/a/b", "/zookeeper", "/a.b", "/...", "/a/..b", "/.a", "/a b", "/é", "/\u{FFEF}"] {
            assert!(is_valid_path(p), "{p:?} should be valid");
        }
    }

    #[test]
    fn rejects_structural_errors() {
        for p in ["", "a", "a/b", "/a/", "//", "//a", "/a//b", "/.", "/..", "/a/.", "/a/../b", "/./a"] {
            assert!(!is_valid_path(p), "{p:?} should be invalid");
        }
    }

    #[test]
    fn rejects_java_forbidden_chars() {
        for p in [
            "/b\x00",
            "/b\x1e",
            "/b\x01",
            "/b\x7f",
            "/b\u{9f}",
            "/b\u{E000}",
            "/b\u{F8FF}",
            "/b\u{FFF0}",
            "/b\u{FFFF}",
            "/b\u{1F600}",
            "/\u{10000}",
        ] {
            assert_eq!(validate_path(p), Err(ErrorCode::BadArguments), "{p:?}");
        }
        assert!(is_valid_path("/b\u{A0}"));
        assert!(is_valid_path("/b\u{F900}"));
    }

    #[test]
    fn parent_splitting() {
        assert_eq!(split_parent("/a"), Some(("", "a")));
        assert_eq!(split_parent("/a/b"), Some(("/a", "b")));
        assert_eq!(split_parent("/folder/"), Some(("/folder", "")));
        assert_eq!(split_parent("abc"), None);
        assert_eq!(create_parent("/a\0"), Err(ErrorCode::BadArguments));
        assert_eq!(delete_parent("/zookeeper/quota"), Err(ErrorCode::BadArguments));
        assert_eq!(delete_parent("/"), Err(ErrorCode::BadArguments));
        assert_eq!(delete_parent("/zookeeper/x"), Ok("/zookeeper"));
        assert_eq!(canonical(""), "/");
    }
}
