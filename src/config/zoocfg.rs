//! Reading ZooKeeper `zoo.cfg` files into raw, line-numbered entries.
//!
//! ZooKeeper loads zoo.cfg with `java.util.Properties`, so this accepts the same line shapes that real
//! configs use: `key=value`, `key: value` and `key value`; `#` and `!` comment lines; blank lines;
//! whitespace around keys and values is dropped (QuorumPeerConfig trims values too). Backslash line
//! continuations and escapes are not supported (no zoo.cfg in practice uses them).
//!
//! Interpretation of the keys happens later, in `settings`/`load`, so that a bad value can be reported
//! with its file and line after the precedence rules have decided which value is used.

use std::path::Path;

use super::error::{ConfigError, Origin};
use super::settings::RawEntry;

/// Reads and splits a zoo.cfg file.
pub fn read(path: &Path) -> Result<Vec<RawEntry>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
    Ok(parse(&text, path))
}

/// Splits zoo.cfg text into entries; `path` is only used to label the entries' origins.
pub fn parse(text: &str, path: &Path) -> Vec<RawEntry> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let (key, value) = split_line(line)?;
            Some(RawEntry {
                key: key.to_string(),
                value: value.to_string(),
                origin: Origin::File { path: path.to_path_buf(), line: index + 1 },
            })
        })
        .collect()
}

/// Splits one properties line into key and value; `None` for blank and comment lines.
fn split_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
        return None;
    }
    let key_end = line.find(|c: char| c == '=' || c == ':' || c.is_whitespace()).unwrap_or(line.len());
    let (key, rest) = line.split_at(key_end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
    Some((key, rest.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        parse(text, Path::new("zoo.cfg"))
            .into_iter()
            .map(|e| match e.origin {
                Origin::File { line, .. } => (e.key, e.value, line),
                other => panic!("unexpected origin {other:?}"),
            })
            .collect()
    }

    #[test]
    fn comments_blank_lines_and_whitespace() {
        let text = "# comment\n\n  tickTime = 2000  \n! also a comment\n\tdataDir=/tmp/zk\n";
        assert_eq!(pairs(text), vec![("tickTime".into(), "2000".into(), 3), ("dataDir".into(), "/tmp/zk".into(), 5),]);
    }

    #[test]
    fn java_properties_separators() {
        let text = "clientPort: 2181\ninitLimit 5\nserver.1=localhost:2888:3888;2181\nempty=\n";
        assert_eq!(
            pairs(text),
            vec![
                ("clientPort".into(), "2181".into(), 1),
                ("initLimit".into(), "5".into(), 2),
                ("server.1".into(), "localhost:2888:3888;2181".into(), 3),
                ("empty".into(), "".into(), 4),
            ]
        );
    }

    #[test]
    fn value_keeps_inner_equals_signs() {
        let text = "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n";
        assert_eq!(pairs(text)[0].1, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }

    #[test]
    fn missing_file_error_names_the_file() {
        let err = read(Path::new("/nonexistent/roost/zoo.cfg")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/roost/zoo.cfg"), "{err}");
    }
}
