//! Ancestor iteration for persistent-recursive matching.

/// The proper ancestors of a znode path, nearest first:
/// `/a/b/c` yields `/a/b`, `/a`, `/`; `/` yields nothing.
///
/// Slices of the input, no allocation. The input is assumed to be a valid absolute
/// path (the tree validates paths before a change exists); anything without a
/// leading `/` simply yields nothing.
pub fn ancestors(path: &str) -> Ancestors<'_> {
    let rest = if path.starts_with('/') { path } else { "" };
    Ancestors { rest }
}

/// Iterator returned by [`ancestors`].
pub struct Ancestors<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Ancestors<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.rest.len() <= 1 {
            return None;
        }
        let cut = self.rest.rfind('/')?;
        // `rest` starts with '/', so cut 0 means the parent is the root.
        self.rest = &self.rest[..cut.max(1)];
        Some(self.rest)
    }
}

#[cfg(test)]
mod tests {
    use super::ancestors;

    fn all(p: &str) -> Vec<&str> {
        ancestors(p).collect()
    }

    #[test]
    fn nearest_first_up_to_root() {
        assert_eq!(all("/a/b/c"), vec!["/a/b", "/a", "/"]);
        assert_eq!(all("/a"), vec!["/"]);
    }

    #[test]
    fn root_and_garbage_have_no_ancestors() {
        assert!(all("/").is_empty());
        assert!(all("").is_empty());
        assert!(all("abc").is_empty());
        assert!(all("a/b").is_empty());
    }
}
