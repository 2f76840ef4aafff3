//! Parsers for single configuration values. Each returns the [`ValueProblem`] that ends up in the
//! error message after the quoted value (the caller adds origin and key).

use super::error::ValueProblem;
use super::servers::{PeerRole, MAX_SERVER_ID, MIN_SERVER_ID};

/// A port; 0 is accepted (it means "any free port" for listeners Roost opens itself).
pub fn port(text: &str) -> Result<u16, ValueProblem> {
    text.parse::<u16>().map_err(|_| ValueProblem::NotAPort)
}

/// A non-negative integer that fits in `u32`.
pub fn u32_any(text: &str) -> Result<u32, ValueProblem> {
    text.parse::<u32>().map_err(|_| ValueProblem::NotAnInteger)
}

/// A strictly positive `u32` (tickTime, initLimit...).
pub fn u32_positive(text: &str) -> Result<u32, ValueProblem> {
    match u32_any(text)? {
        0 => Err(ValueProblem::NotPositive),
        n => Ok(n),
    }
}

/// A non-negative integer that fits in `u64`.
pub fn u64_any(text: &str) -> Result<u64, ValueProblem> {
    text.parse::<u64>().map_err(|_| ValueProblem::NotAnInteger)
}

/// A strictly positive `u64`.
pub fn u64_positive(text: &str) -> Result<u64, ValueProblem> {
    match u64_any(text)? {
        0 => Err(ValueProblem::NotPositive),
        n => Ok(n),
    }
}

/// A positive size in bytes, decimal or `0x` hex (Java reads `jute.maxbuffer` with `Integer.decode`,
/// and configs commonly write `0xfffff`). Must fit in a Java int.
pub fn byte_size(text: &str) -> Result<u32, ValueProblem> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse::<u32>(),
    };
    match parsed {
        Ok(0) => Err(ValueProblem::NotPositive),
        Ok(n) if n > i32::MAX as u32 => Err(ValueProblem::OutOfRange { min: 1, max: i32::MAX as u64 }),
        Ok(n) => Ok(n),
        Err(_) => Err(ValueProblem::NotAnInteger),
    }
}

/// `true` / `false`, case-insensitive. Stricter than Java's `Boolean.parseBoolean` (which reads any
/// other text as false) on purpose: a typo should not silently disable a feature.
pub fn boolean(text: &str) -> Result<bool, ValueProblem> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ValueProblem::NotABool),
    }
}

/// Any text that is not empty (paths, host names).
pub fn non_empty(text: &str) -> Result<String, ValueProblem> {
    if text.is_empty() {
        Err(ValueProblem::Empty)
    } else {
        Ok(text.to_string())
    }
}

/// `participant` or `observer`.
pub fn peer_type(text: &str) -> Result<PeerRole, ValueProblem> {
    PeerRole::parse(text).ok_or(ValueProblem::NotAPeerType)
}

/// `user:base64(sha1(user:password))`, the form `DigestAuthenticationProvider.superDigest` takes.
/// A comma-separated list of `user:<base64 sha1>` digests (`http.users`).
pub fn digest_list(text: &str) -> Result<Vec<String>, ValueProblem> {
    text.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once(':') {
            Some((user, hash)) if !user.is_empty() && hash.len() == 28 && hash.ends_with('=') => Ok(e.to_string()),
            _ => Err(ValueProblem::NotASuperDigest),
        })
        .collect()
}

pub fn super_digest(text: &str) -> Result<String, ValueProblem> {
    match text.split_once(':') {
        Some((user, digest)) if !user.is_empty() && !digest.is_empty() => Ok(text.to_string()),
        _ => Err(ValueProblem::NotASuperDigest),
    }
}

/// A server id (`myid`, `server.N`, `--server-id`): 1..=254.
pub fn server_id(text: &str) -> Result<u64, ValueProblem> {
    match text.trim().parse::<u64>() {
        Ok(id) if (MIN_SERVER_ID..=MAX_SERVER_ID).contains(&id) => Ok(id),
        _ => Err(ValueProblem::NotAServerId),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(port("2181"), Ok(2181));
        assert_eq!(port("0"), Ok(0));
        assert_eq!(port("65536"), Err(ValueProblem::NotAPort));
        assert_eq!(port("abc"), Err(ValueProblem::NotAPort));
        assert_eq!(port("-1"), Err(ValueProblem::NotAPort));
    }

    #[test]
    fn byte_sizes_accept_hex() {
        assert_eq!(byte_size("0xfffff"), Ok(0xfffff));
        assert_eq!(byte_size("4194304"), Ok(4_194_304));
        assert_eq!(byte_size("0"), Err(ValueProblem::NotPositive));
        assert_eq!(byte_size("0xzz"), Err(ValueProblem::NotAnInteger));
        assert!(byte_size("4294967295").is_err());
    }

    #[test]
    fn booleans_are_strict() {
        assert_eq!(boolean("TRUE"), Ok(true));
        assert_eq!(boolean("false"), Ok(false));
        assert_eq!(boolean("yes"), Err(ValueProblem::NotABool));
    }

    #[test]
    fn server_ids() {
        assert_eq!(server_id("1"), Ok(1));
        assert_eq!(server_id(" 254\n"), Ok(254));
        assert_eq!(server_id("0"), Err(ValueProblem::NotAServerId));
        assert_eq!(server_id("255"), Err(ValueProblem::NotAServerId));
        assert_eq!(server_id("one"), Err(ValueProblem::NotAServerId));
    }

    #[test]
    fn super_digests() {
        assert!(super_digest("super:D/InIHSb7yEEbrWz8b9l71RjZJU=").is_ok());
        assert_eq!(super_digest("nodigest"), Err(ValueProblem::NotASuperDigest));
        assert_eq!(super_digest(":abc"), Err(ValueProblem::NotASuperDigest));
    }
}
