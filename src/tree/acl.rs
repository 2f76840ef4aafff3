//! ACL logic: digest ids, permission checks, and the `fixupACL` rules applied
//! on create and setACL.
//!
//! Valid inside an ACL: `world` (id `anyone`), `auth` (expanded), `digest`, `ip`, and the ids
//! of the `x509` and `sasl` providers, which match the caller's ids exactly.

use std::collections::HashSet;
use std::net::Ipv6Addr;

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::proto::types::{Acl, ErrorCode, Id};

/// `DigestAuthenticationProvider.generateDigest`: `user:BASE64(SHA1("user:password"))`.
/// The user is everything before the first `:`.
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split_once(':').map_or(user_password, |(u, _)| u);
    let hash = Sha1::digest(user_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// `ZooKeeperServer.checkACL`: does `auth` hold `perm` on a node with `acl`?
/// An empty ACL allows everything, and a `super` id bypasses every check.
pub fn check_acl(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    if acl.is_empty() || auth.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter().any(|entry| entry.perms & perm != 0 && id_matches(&entry.id, auth))
}

/// Whether one ACL id is satisfied by any of the caller's ids.
fn id_matches(acl_id: &Id, auth: &[Id]) -> bool {
    match acl_id.scheme.as_str() {
        "world" => acl_id.id == "anyone",
        "ip" => auth.iter().any(|a| a.scheme == "ip" && ip_matches(&a.id, &acl_id.id)),
        "super" | "auth" => false,
        // `SASLAuthenticationProvider.matches`: the SASL user `super` matches every sasl entry.
        "sasl" => auth.iter().any(|a| a.scheme == "sasl" && (a.id == acl_id.id || a.id == "super")),
        _ => auth.iter().any(|a| a == acl_id),
    }
}

/// `PrepRequestProcessor.fixupACL`: removes duplicates (keeping the first),
/// expands `auth` into the caller's authenticated ids and rejects anything
/// invalid with InvalidAcl.
pub fn fixup_acl(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut seen = HashSet::with_capacity(acl.len());
    let unique: Vec<&Acl> = acl.iter().filter(|a| seen.insert(*a)).collect();
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for entry in unique {
        let id = &entry.id;
        match id.scheme.as_str() {
            "world" if id.id == "anyone" => out.push(entry.clone()),
            "auth" => {
                let before = out.len();
                out.extend(
                    auth.iter()
                        .filter(|a| is_authenticated_scheme(&a.scheme))
                        .map(|a| Acl { perms: entry.perms, id: a.clone() }),
                );
                if out.len() == before {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if digest_id_valid(&id.id) => out.push(entry.clone()),
            "ip" if ip_acl_valid(&id.id) => out.push(entry.clone()),
            // The x509 and SASL providers: ZooKeeper accepts them when registered; Roost always
            // has them (apply must not depend on one member's settings). Ids are matched exactly.
            "x509" if x500_name_valid(&id.id) => out.push(entry.clone()),
            "sasl" if !id.id.is_empty() => out.push(entry.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// Schemes whose ids count as "authenticated" for the `auth` expansion: `ip` is
/// automatic (its provider says not authenticated) and `super` has no provider.
fn is_authenticated_scheme(scheme: &str) -> bool {
    !matches!(scheme, "ip" | "super" | "world" | "auth")
}

/// getACL for a caller without ADMIN: digest ids come back as `user:x`
/// (`id.replaceAll(":.*", ":x")`).
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| match (a.id.scheme.as_str(), a.id.id.split_once(':')) {
            ("digest", Some((user, _))) => Acl { perms: a.perms, id: Id::new("digest", format!("{user}:x")) },
            _ => a.clone(),
        })
        .collect()
}

/// `DigestAuthenticationProvider.isValid`: Java's `id.split(":").length == 2`,
/// where trailing empty pieces are dropped.
fn digest_id_valid(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// Attribute keywords Java's `X500Principal` parses (RFC 1779 / 2253 and its own additions).
const X500_KEYWORDS: &[&str] = &[
    "CN",
    "C",
    "L",
    "S",
    "ST",
    "O",
    "OU",
    "T",
    "IP",
    "STREET",
    "DC",
    "DNQUALIFIER",
    "DNQ",
    "SURNAME",
    "GIVENNAME",
    "INITIALS",
    "GENERATION",
    "EMAIL",
    "EMAILADDRESS",
    "UID",
    "SERIALNUMBER",
];

/// `X509AuthenticationProvider.isValid`: the id parses as an X.500 name (`new X500Principal(id)`):
/// attribute-value pairs separated by `,` `;` or `+` (outside quotes and escapes), each a known
/// keyword or a dotted OID, then `=`.
fn x500_name_valid(name: &str) -> bool {
    if name.trim().is_empty() {
        return true; // the empty name
    }
    let mut avas = Vec::new();
    let (mut current, mut quoted, mut escaped) = (String::new(), false, false);
    for c in name.chars() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                current.push(c);
                escaped = true;
            }
            '"' => {
                current.push(c);
                quoted = !quoted;
            }
            ',' | ';' | '+' if !quoted => avas.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted || escaped {
        return false;
    }
    avas.push(current);
    avas.iter().all(|ava| {
        let Some((key, _value)) = ava.split_once('=') else { return false };
        let key = key.trim();
        let key = key.strip_prefix("OID.").or_else(|| key.strip_prefix("oid.")).unwrap_or(key);
        let oid = !key.is_empty()
            && key.split('.').count() >= 2
            && key.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
        oid || X500_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(key))
    })
}

/// Parses `a.b.c.d` the way `IPAuthenticationProvider` does (four decimal ints
/// in 0..=255), falling back to IPv6 text forms (an optional `%zone` is ignored).
fn parse_addr(s: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() == 4 {
        let mut out = Vec::with_capacity(4);
        for p in parts {
            let v: i32 = p.parse().ok()?;
            out.push(u8::try_from(v).ok()?);
        }
        return Some(out);
    }
    let addr = s.split_once('%').map_or(s, |(a, _)| a);
    addr.parse::<Ipv6Addr>().ok().map(|a| a.octets().to_vec())
}

/// Splits `addr[/bits]` into the address bytes and the prefix length,
/// validating the prefix against the address width.
fn parse_ip_expr(expr: &str) -> Option<(Vec<u8>, usize)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let bytes = parse_addr(addr)?;
    let width = bytes.len() * 8;
    let bits = match bits {
        Some(b) => usize::try_from(b.parse::<i32>().ok()?).ok().filter(|b| *b <= width)?,
        None => width,
    };
    Some((bytes, bits))
}

fn ip_acl_valid(expr: &str) -> bool {
    parse_ip_expr(expr).is_some()
}

/// Zeroes every bit past the first `bits`.
fn mask_bits(bytes: &mut [u8], bits: usize) {
    for (i, b) in bytes.iter_mut().enumerate() {
        let start = i * 8;
        if start >= bits {
            *b = 0;
        } else if bits - start < 8 {
            *b &= 0xFFu8 << (8 - (bits - start));
        }
    }
}

/// `IPAuthenticationProvider.matches`: prefix match of the caller's address.
fn ip_matches(remote: &str, expr: &str) -> bool {
    let Some((mut acl_addr, bits)) = parse_ip_expr(expr) else {
        return false;
    };
    let Some(mut remote_addr) = parse_addr(remote) else {
        return false;
    };
    if remote_addr.len() != acl_addr.len() {
        return false;
    }
    mask_bits(&mut acl_addr, bits);
    mask_bits(&mut remote_addr, bits);
    acl_addr == remote_addr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::types::perms;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl { perms, id: Id::new(scheme, id) }
    }

    #[test]
    fn digest_of_super_test_matches_kazoo_harness() {
        assert_eq!(digest_id("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }

    #[test]
    fn empty_acl_and_super_allow_everything() {
        assert!(check_acl(&[], perms::ADMIN, &[]));
        let only_bob = vec![acl(perms::ALL, "digest", "bob:h")];
        assert!(!check_acl(&only_bob, perms::READ, &[Id::new("ip", "1.2.3.4")]));
        assert!(check_acl(&only_bob, perms::READ, &[Id::new("super", "")]));
        assert!(check_acl(&only_bob, perms::READ, &[Id::new("digest", "bob:h")]));
        assert!(!check_acl(&only_bob, perms::READ, &[Id::new("digest", "bob:H")]));
    }

    #[test]
    fn perms_must_overlap() {
        let read_only = Acl::read_unsafe();
        assert!(check_acl(&read_only, perms::READ, &[]));
        assert!(!check_acl(&read_only, perms::WRITE, &[]));
        assert!(check_acl(&read_only, perms::READ | perms::ADMIN, &[]));
    }

    #[test]
    fn ip_prefix_matching() {
        let a = vec![acl(perms::ALL, "ip", "10.1.0.0/16")];
        assert!(check_acl(&a, perms::READ, &[Id::new("ip", "10.1.200.3")]));
        assert!(!check_acl(&a, perms::READ, &[Id::new("ip", "10.2.0.1")]));
        assert!(!check_acl(&a, perms::READ, &[Id::new("digest", "10.1.0.1")]));
        let exact = vec![acl(perms::ALL, "ip", "127.0.0.1")];
        assert!(check_acl(&exact, perms::READ, &[Id::new("ip", "127.0.0.1")]));
        assert!(!check_acl(&exact, perms::READ, &[Id::new("ip", "127.0.0.2")]));
        let odd = vec![acl(perms::ALL, "ip", "192.168.1.128/25")];
        assert!(check_acl(&odd, perms::READ, &[Id::new("ip", "192.168.1.200")]));
        assert!(!check_acl(&odd, perms::READ, &[Id::new("ip", "192.168.1.100")]));
        let v6 = vec![acl(perms::ALL, "ip", "fe80::/16")];
        assert!(check_acl(&v6, perms::READ, &[Id::new("ip", "fe80:0:0:0:1:2:3:4%eth0")]));
        assert!(!check_acl(&v6, perms::READ, &[Id::new("ip", "::1")]));
        assert!(!check_acl(&v6, perms::READ, &[Id::new("ip", "10.0.0.1")]));
    }

    #[test]
    fn the_sasl_user_super_matches_every_sasl_entry() {
        let bob_only = vec![acl(31, "sasl", "bob")];
        assert!(check_acl(&bob_only, perms::READ, &[Id::new("sasl", "super")]));
        assert!(check_acl(&bob_only, perms::READ, &[Id::new("sasl", "bob")]));
        assert!(!check_acl(&bob_only, perms::READ, &[Id::new("sasl", "alice")]));
        assert!(!check_acl(&bob_only, perms::READ, &[Id::new("digest", "super")]));
    }

    #[test]
    fn fixup_dedupes_and_validates() {
        let dup = vec![acl(31, "world", "anyone"), acl(31, "world", "anyone")];
        assert_eq!(fixup_acl(&dup, &[]).unwrap(), Acl::open_unsafe());
        assert_eq!(fixup_acl(&[], &[]), Err(ErrorCode::InvalidAcl));
        for bad in [
            acl(31, "world", "someone"),
            acl(31, "super", ""),
            acl(31, "foo", "bar"),
            acl(31, "digest", "nocolon"),
            acl(31, "digest", "a:b:c"),
            acl(31, "digest", "bob:"),
            acl(31, "ip", "1.2.3"),
            acl(31, "ip", "1.2.3.256"),
            acl(31, "ip", "1.2.3.4/33"),
            acl(31, "ip", "nonsense"),
            acl(31, "sasl", ""),
            acl(31, "x509", "garbage"),
            acl(31, "x509", "also-garbage"),
            acl(31, "x509", "NOPE=x"),
            acl(31, "x509", "CN=\"unterminated"),
        ] {
            assert_eq!(fixup_acl(std::slice::from_ref(&bad), &[]), Err(ErrorCode::InvalidAcl), "{bad:?}");
        }
        for good in [
            acl(31, "digest", "bob:abc="),
            acl(1, "ip", "10.0.0.0/8"),
            acl(1, "ip", "::1"),
            acl(31, "sasl", "jaasuser"),
            acl(31, "x509", "CN=client"),
            acl(1, "x509", "UID=u1+CN=x"),
            acl(1, "x509", "CN=a\\,b,O=Acme,1.2.840.113549.1.9.1=#16076140782e6f7267"),
        ] {
            assert_eq!(fixup_acl(std::slice::from_ref(&good), &[]).unwrap(), vec![good]);
        }
    }

    #[test]
    fn auth_scheme_expands_to_authenticated_ids() {
        let creator_all = vec![acl(31, "auth", "")];
        let ip_only = [Id::new("ip", "127.0.0.1")];
        assert_eq!(fixup_acl(&creator_all, &ip_only), Err(ErrorCode::InvalidAcl));
        let super_only = [Id::new("ip", "127.0.0.1"), Id::new("super", "")];
        assert_eq!(fixup_acl(&creator_all, &super_only), Err(ErrorCode::InvalidAcl));
        let auth = [Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h"), Id::new("digest", "v:g")];
        assert_eq!(fixup_acl(&creator_all, &auth).unwrap(), vec![acl(31, "digest", "u:h"), acl(31, "digest", "v:g")]);
    }

    #[test]
    fn masking_hides_digest_hashes_only() {
        let a = vec![acl(31, "digest", "bob:secret="), acl(1, "world", "anyone"), acl(1, "ip", "1.2.3.4")];
        let m = mask_digests(&a);
        assert_eq!(m[0].id.id, "bob:x");
        assert_eq!(m[1..], a[1..]);
    }
}
