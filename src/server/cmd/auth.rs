//! Auth packets (xid -4): adding identities to a connection.
//!
//! Only the `digest` scheme authenticates by packet (ip identities come from the
//! socket). A digest auth always "succeeds": a wrong password just produces an id
//! that matches no ACL, exactly as in ZooKeeper. A digest equal to the configured
//! `superDigest` also grants the `super` identity, which bypasses every ACL.

use crate::proto::types::{ErrorCode, Id};
use crate::tree::acl::digest_id;

/// Returns the identities an auth packet adds, or AuthFailed for an unknown scheme
/// (the server then answers -115 and closes the connection).
pub fn authenticate(scheme: &str, auth: &[u8], super_digest: Option<&str>) -> Result<Vec<Id>, ErrorCode> {
    match scheme {
        "digest" => {
            let credentials = std::str::from_utf8(auth).map_err(|_| ErrorCode::AuthFailed)?;
            let id = digest_id(credentials);
            let mut ids = Vec::with_capacity(2);
            if super_digest == Some(id.as_str()) {
                ids.push(Id::new("super", ""));
            }
            ids.push(Id::new("digest", id));
            Ok(ids)
        }
        _ => Err(ErrorCode::AuthFailed),
    }
}

/// Adds `new` identities to a connection's list and keeps the list in the order
/// ZooKeeper iterates its per-connection auth set (a Java `ConcurrentHashMap` key
/// set: by hash bucket, then insertion). That order is visible to clients: it is
/// the order of `whoami` and of the ids an `auth` ACL expands to in `getAcl`.
pub fn add_identities(current: &mut Vec<Id>, new: Vec<Id>) {
    for id in new {
        if !current.contains(&id) {
            current.push(id);
        }
    }
    // Java grows the table from 16 buckets when it is 3/4 full.
    let mut buckets = 16usize;
    while current.len() > buckets * 3 / 4 {
        buckets *= 2;
    }
    current.sort_by_key(|id| java_bucket(id, buckets)); // stable: insertion order within a bucket
}

fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The bucket of a jute `Id` (`hashCode` = 37 * (37 * 17 + scheme) + id) in a
/// `ConcurrentHashMap` of `buckets` buckets.
fn java_bucket(id: &Id, buckets: usize) -> usize {
    let h = 17i32.wrapping_mul(37).wrapping_add(java_string_hash(&id.scheme));
    let h = h.wrapping_mul(37).wrapping_add(java_string_hash(&id.id));
    let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
    spread as usize & (buckets - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HARNESS_SUPER: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

    #[test]
    fn digest_auth_with_the_super_password_grants_super() {
        let ids = authenticate("digest", b"super:test", Some(HARNESS_SUPER)).unwrap();
        assert!(ids.contains(&Id::new("super", "")));
        assert!(ids.contains(&Id::new("digest", HARNESS_SUPER)));
    }

    #[test]
    fn wrong_password_is_a_plain_digest_id() {
        let ids = authenticate("digest", b"super:nope", Some(HARNESS_SUPER)).unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].scheme, "digest");
    }

    #[test]
    fn identities_follow_java_hash_set_order() {
        // Apache ZooKeeper lists alice before bob whatever the order of addauth.
        let alice = authenticate("digest", b"alice:secret", None).unwrap();
        let bob = authenticate("digest", b"bob:wrong", None).unwrap();
        let mut ids = vec![Id::new("ip", "127.0.0.1")];
        add_identities(&mut ids, bob.clone());
        add_identities(&mut ids, alice.clone());
        let a = ids.iter().position(|i| *i == alice[0]).unwrap();
        let b = ids.iter().position(|i| *i == bob[0]).unwrap();
        assert!(a < b, "{ids:?}");
    }

    #[test]
    fn java_string_hash_matches_java() {
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(java_string_hash("hello"), 99162322);
    }

    #[test]
    fn unknown_scheme_fails() {
        assert_eq!(authenticate("kerberos", b"x", None), Err(ErrorCode::AuthFailed));
    }
}
