//! The four-letter-word whitelist (`4lw.commands.whitelist`).
//!
//! Semantics follow ZooKeeper's `FourLetterCommands.isEnabled`: the value is a comma-separated list
//! (Roost also accepts spaces as separators), `*` enables every command, `srvr` is always enabled
//! (ZooKeeper's own tools need it), and `isro` is added when read-only mode is enabled because
//! clients in read-only mode poll other servers with it.

use std::collections::BTreeSet;
use std::fmt;

/// Which four-letter words the client port answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FourLetterWhitelist {
    all: bool,
    words: BTreeSet<String>,
}

impl FourLetterWhitelist {
    /// Builds the whitelist from the configured list (`None` when the key is not set).
    pub fn new(list: Option<&str>, read_only_enabled: bool) -> FourLetterWhitelist {
        let mut words = BTreeSet::new();
        let mut all = false;
        for word in list.unwrap_or("").split(|c: char| c == ',' || c.is_whitespace()) {
            match word.trim() {
                "" => {}
                "*" => all = true,
                w => {
                    words.insert(w.to_string());
                }
            }
        }
        words.insert("srvr".to_string());
        if read_only_enabled {
            words.insert("isro".to_string());
        }
        FourLetterWhitelist { all, words }
    }

    /// Whether the command word may run. With `*` every word is allowed; the server still decides
    /// whether it knows the word at all.
    pub fn allows(&self, command: &str) -> bool {
        self.all || self.words.contains(command)
    }

    /// True when the list contained `*`.
    pub fn allows_all(&self) -> bool {
        self.all
    }

    /// The explicitly enabled words (including the implicit `srvr` / `isro`).
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(String::as_str)
    }
}

impl Default for FourLetterWhitelist {
    /// ZooKeeper's default without configuration: only `srvr`.
    fn default() -> Self {
        FourLetterWhitelist::new(None, false)
    }
}

impl fmt::Display for FourLetterWhitelist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.all {
            return f.write_str("*");
        }
        let words: Vec<&str> = self.words().collect();
        f.write_str(&words.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_only_srvr() {
        let w = FourLetterWhitelist::new(None, false);
        assert!(w.allows("srvr"));
        for word in ["ruok", "envi", "isro", "stat", "mntr", "conf"] {
            assert!(!w.allows(word), "{word}");
        }
        assert_eq!(w, FourLetterWhitelist::default());
    }

    #[test]
    fn read_only_mode_adds_isro() {
        let w = FourLetterWhitelist::new(None, true);
        assert!(w.allows("isro"));
        assert!(w.allows("srvr"));
        assert!(!w.allows("ruok"));
    }

    #[test]
    fn star_allows_everything() {
        let w = FourLetterWhitelist::new(Some("*"), false);
        assert!(w.allows_all());
        for word in ["ruok", "envi", "isro", "stat", "mntr", "wchp"] {
            assert!(w.allows(word), "{word}");
        }
        assert!(FourLetterWhitelist::new(Some("ruok, *"), false).allows("envi"));
    }

    #[test]
    fn lists_with_commas_and_spaces() {
        let w = FourLetterWhitelist::new(Some(" stat, ruok ,conf  envi,,"), false);
        for word in ["stat", "ruok", "conf", "envi", "srvr"] {
            assert!(w.allows(word), "{word}");
        }
        assert!(!w.allows("mntr"));
        assert!(!w.allows("isro"));
        assert!(!w.allows(""));
        assert_eq!(w.to_string(), "conf,envi,ruok,srvr,stat");
    }
}
