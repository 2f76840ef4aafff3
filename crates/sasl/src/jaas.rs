//! JAAS login configuration files, the format Java reads for `-Djava.security.auth.login.config`.
//!
//! ZooKeeper deployments keep their SASL secrets (DIGEST-MD5 users, quorum credentials, keytab
//! paths) in these files, so Roost reads the same files rather than inventing its own format.
//! The grammar and tokenizing follow the JDK's `sun.security.provider.ConfigFile`, which uses a
//! `java.io.StreamTokenizer`:
//!
//! ```text
//! file    := section*
//! section := NAME '{' module* '}' ';'
//! module  := CLASS FLAG (KEY '=' VALUE)* ';'
//! ```
//!
//! NAME, CLASS, FLAG, KEY and VALUE are each a bare word (letters, digits, `. - _ $ *` and
//! characters from U+00A0 up) or a string in double or single quotes with the tokenizer's
//! backslash escapes (`\n \t \r \b \f \a \v`, octal `\0`–`\377`, otherwise the next character
//! itself). `//` and `/* */` comments and whitespace may appear between any two tokens.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::JaasError;

/// The largest JAAS file accepted. Real ones are a few hundred bytes; the cap keeps a
/// mistakenly named multi-gigabyte file from being tokenized into memory.
pub const MAX_JAAS_FILE_LEN: usize = 1 << 20;

/// How a login module's outcome counts towards the section's (JAAS `LoginModuleControlFlag`).
/// Roost only records it; it is kept so that a configuration can be inspected faithfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlFlag {
    Required,
    Requisite,
    Sufficient,
    Optional,
}

impl ControlFlag {
    /// Java upper-cases the flag before matching, so `REQUIRED` and `Required` are accepted too.
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "required" => Some(Self::Required),
            "requisite" => Some(Self::Requisite),
            "sufficient" => Some(Self::Sufficient),
            "optional" => Some(Self::Optional),
            _ => None,
        }
    }
}

/// One `<LoginModuleClass> <flag> key=value ... ;` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    pub flag: ControlFlag,
    /// In file order. A key given twice keeps its first position and its last value, as Java's
    /// `HashMap::put` would.
    pub options: Vec<(String, String)>,
}

impl LoginModule {
    /// The value of option `key` (exact, case-sensitive match, as in Java).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Whether an option's value is a secret that must not be printed: DIGEST-MD5 user entries
/// (`user_<name>`) and anything that names a password or secret.
fn is_secret_option(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.starts_with("user_") || lower.contains("pass") || lower.contains("secret")
}

/// Prints the options with secret values replaced, because configurations get logged.
impl fmt::Debug for LoginModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Options<'a>(&'a [(String, String)]);
        impl fmt::Debug for Options<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut m = f.debug_map();
                for (k, v) in self.0 {
                    if is_secret_option(k) {
                        m.entry(k, &"<redacted>");
                    } else {
                        m.entry(k, v);
                    }
                }
                m.finish()
            }
        }
        f.debug_struct("LoginModule")
            .field("class", &self.class)
            .field("flag", &self.flag)
            .field("options", &Options(&self.options))
            .finish()
    }
}

/// One named application entry, e.g. `Server`, `Client`, `QuorumServer`, `QuorumLearner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasSection {
    pub name: String,
    pub modules: Vec<LoginModule>,
}

impl JaasSection {
    /// DIGEST-MD5 users: every option `user_<name>` in any module of the section, mapping
    /// `<name>` to the password (ZooKeeper's `SaslServerCallbackHandler` collects them the same
    /// way). A later module's entry for the same user wins, as it does in ZooKeeper.
    pub fn digest_users(&self) -> BTreeMap<String, String> {
        let mut users = BTreeMap::new();
        for module in &self.modules {
            for (k, v) in &module.options {
                if let Some(user) = k.strip_prefix("user_") {
                    users.insert(user.to_owned(), v.clone());
                }
            }
        }
        users
    }

    /// The first module's option value, e.g. `username`/`password` of a QuorumLearner or Client
    /// section, `principal`, `keyTab`. ZooKeeper reads these from the first entry only.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.modules.first().and_then(|m| m.option(key))
    }
}

/// A parsed JAAS file: its sections in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JaasConfig {
    pub sections: Vec<JaasSection>,
}

impl JaasConfig {
    /// Parses the whole file. An empty file (or one with only comments) has no sections.
    /// Errors carry the line and column of the offending token.
    pub fn parse(text: &str) -> Result<JaasConfig, JaasError> {
        if text.len() > MAX_JAAS_FILE_LEN {
            return Err(JaasError {
                line: 1,
                column: 1,
                message: format!("file is {} bytes, more than the {} allowed", text.len(), MAX_JAAS_FILE_LEN),
            });
        }
        Parser::new(text)?.parse_file()
    }

    /// The section called `name` (case-sensitive, as in Java).
    pub fn section(&self, name: &str) -> Option<&JaasSection> {
        self.sections.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A bare word or a quoted string; Java's ConfigFile does not distinguish them.
    Word(String),
    Punct(char),
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("{w:?}"),
            Tok::Punct(c) => format!("'{c}'"),
            Tok::Eof => "end of file".to_owned(),
        }
    }
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
}

fn err(line: usize, column: usize, message: impl Into<String>) -> JaasError {
    JaasError { line, column, message: message.into() }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '$' | '*') || c >= '\u{a0}'
}

impl<'a> Lexer<'a> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        match c {
            '\n' => {
                self.line += 1;
                self.column = 1;
            }
            // A lone CR ends a line too; in CRLF the LF does the counting.
            '\r' if self.chars.peek() != Some(&'\n') => {
                self.line += 1;
                self.column = 1;
            }
            '\r' => {}
            _ => self.column += 1,
        }
        Some(c)
    }

    /// Skips whitespace and comments, then returns the next token with its start position.
    fn next(&mut self) -> Result<(Tok, usize, usize), JaasError> {
        loop {
            let (line, column) = (self.line, self.column);
            let Some(&c) = self.chars.peek() else { return Ok((Tok::Eof, line, column)) };
            // StreamTokenizer's whitespace is exactly U+0000..=U+0020.
            if c <= ' ' {
                self.bump();
                continue;
            }
            if c == '/' {
                self.bump();
                match self.chars.peek() {
                    Some('/') => {
                        while let Some(c) = self.bump() {
                            if c == '\n' || c == '\r' {
                                break;
                            }
                        }
                    }
                    Some('*') => {
                        self.bump();
                        let mut prev = '\0';
                        loop {
                            match self.bump() {
                                None => return Err(err(line, column, "unterminated /* comment")),
                                Some('/') if prev == '*' => break,
                                Some(c) => prev = c,
                            }
                        }
                    }
                    // Java would treat a lone '/' as the start of a line comment and then fail
                    // somewhere later; say what is wrong where it is wrong instead.
                    _ => return Err(err(line, column, "unexpected '/' (quote values that contain '/')")),
                }
                continue;
            }
            if c == '"' || c == '\'' {
                self.bump();
                return Ok((Tok::Word(self.quoted(c, line, column)?), line, column));
            }
            if is_word_char(c) {
                let mut w = String::new();
                while let Some(&c) = self.chars.peek() {
                    if !is_word_char(c) {
                        break;
                    }
                    w.push(c);
                    self.bump();
                }
                return Ok((Tok::Word(w), line, column));
            }
            if matches!(c, '{' | '}' | ';' | '=') {
                self.bump();
                return Ok((Tok::Punct(c), line, column));
            }
            return Err(err(line, column, format!("unexpected character {c:?}")));
        }
    }

    /// The body of a quoted string, after the opening quote.
    fn quoted(&mut self, quote: char, line: usize, column: usize) -> Result<String, JaasError> {
        let mut s = String::new();
        loop {
            let Some(c) = self.bump() else { return Err(err(line, column, "unterminated quoted string")) };
            match c {
                c if c == quote => return Ok(s),
                // Java ends the string silently at the end of the line; that is always a typo.
                '\n' | '\r' => return Err(err(line, column, "unterminated quoted string (end of line)")),
                '\\' => {
                    let Some(e) = self.bump() else {
                        return Err(err(line, column, "unterminated quoted string"));
                    };
                    match e {
                        'a' => s.push('\u{7}'),
                        'b' => s.push('\u{8}'),
                        'f' => s.push('\u{c}'),
                        'n' => s.push('\n'),
                        'r' => s.push('\r'),
                        't' => s.push('\t'),
                        'v' => s.push('\u{b}'),
                        '0'..='7' => {
                            // Up to three octal digits, the third only if the first is 0-3 (so the
                            // value fits in a byte), as StreamTokenizer does.
                            let mut v = e as u32 - '0' as u32;
                            if let Some(&d) = self.chars.peek().filter(|d| matches!(d, '0'..='7')) {
                                self.bump();
                                v = v * 8 + (d as u32 - '0' as u32);
                                if e <= '3' {
                                    if let Some(&d) = self.chars.peek().filter(|d| matches!(d, '0'..='7')) {
                                        self.bump();
                                        v = v * 8 + (d as u32 - '0' as u32);
                                    }
                                }
                            }
                            s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                        }
                        other => s.push(other),
                    }
                }
                c => s.push(c),
            }
        }
    }
}

struct Parser<'a> {
    lex: Lexer<'a>,
    tok: Tok,
    line: usize,
    column: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Result<Self, JaasError> {
        let mut lex = Lexer { chars: text.chars().peekable(), line: 1, column: 1 };
        let (tok, line, column) = lex.next()?;
        Ok(Parser { lex, tok, line, column })
    }

    fn advance(&mut self) -> Result<Tok, JaasError> {
        let (tok, line, column) = self.lex.next()?;
        self.line = line;
        self.column = column;
        Ok(std::mem::replace(&mut self.tok, tok))
    }

    fn error(&self, expected: &str) -> JaasError {
        JaasError {
            line: self.line,
            column: self.column,
            message: format!("expected {expected}, found {}", self.tok.describe()),
        }
    }

    fn word(&mut self, what: &str) -> Result<String, JaasError> {
        match &self.tok {
            Tok::Word(_) => match self.advance()? {
                Tok::Word(w) => Ok(w),
                _ => Err(self.error(what)),
            },
            _ => Err(self.error(what)),
        }
    }

    fn punct(&mut self, p: char) -> Result<(), JaasError> {
        if self.tok == Tok::Punct(p) {
            self.advance()?;
            Ok(())
        } else {
            Err(self.error(&format!("'{p}'")))
        }
    }

    fn parse_file(mut self) -> Result<JaasConfig, JaasError> {
        let mut sections: Vec<JaasSection> = Vec::new();
        while self.tok != Tok::Eof {
            let (line, column) = (self.line, self.column);
            let name = self.word("a section name")?;
            self.punct('{')?;
            let mut modules = Vec::new();
            while self.tok != Tok::Punct('}') {
                modules.push(self.parse_module()?);
            }
            self.punct('}')?;
            self.punct(';')?;
            // Java refuses a repeated application name; silently merging or shadowing would make
            // the credentials in use depend on which copy someone edited.
            if sections.iter().any(|s| s.name == name) {
                return Err(JaasError { line, column, message: format!("section {name:?} is defined twice") });
            }
            sections.push(JaasSection { name, modules });
        }
        Ok(JaasConfig { sections })
    }

    fn parse_module(&mut self) -> Result<LoginModule, JaasError> {
        let class = self.word("a login module class name or '}'")?;
        let (line, column) = (self.line, self.column);
        let flag_word = self.word("a control flag (required, requisite, sufficient or optional)")?;
        let flag = ControlFlag::parse(&flag_word).ok_or_else(|| JaasError {
            line,
            column,
            message: format!("invalid control flag {flag_word:?} (required, requisite, sufficient or optional)"),
        })?;
        let mut options: Vec<(String, String)> = Vec::new();
        while self.tok != Tok::Punct(';') {
            let key = self.word("an option name or ';'")?;
            self.punct('=')?;
            let value = self.word("an option value")?;
            match options.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => options.push((key, value)),
            }
        }
        self.punct(';')?;
        Ok(LoginModule { class, flag, options })
    }
}
