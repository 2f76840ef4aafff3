//! The DIGEST-MD5 SASL mechanism (RFC 2831), authentication only (qop `auth`), as ZooKeeper
//! 3.8 speaks it through the JDK's `com.sun.security.sasl.digest` server.
//!
//! ZooKeeper clients (Java's own SASL client, kazoo's pure-sasl) expect the JDK server's exact
//! challenge, so the server reproduces it byte for byte; responses are checked as strictly as
//! the JDK does, plus one rule of Roost's own: a client may not ask to act as another user
//! (`authzid`), because ZooKeeper's callback handler authorizes any such request.
//!
//! The exchange for one connection:
//! 1. client sends an empty token; server answers with a challenge carrying a fresh nonce;
//! 2. client sends its digest response; server checks it and answers `rspauth=...`, which lets
//!    the client check that the server knows the password too.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use rand::RngCore as _;

use crate::error::SaslError;
pub use crate::Step;

/// The largest token either side accepts. The JDK server refuses responses over 4096 bytes
/// (RFC 2831 says 4096 for responses, 2048 for challenges), and every honest token is far
/// shorter; the cap bounds the work a hostile peer can cause.
pub const MAX_TOKEN_LEN: usize = 4096;

/// At most this many directives in one token; honest ones have about ten.
const MAX_DIRECTIVES: usize = 64;

/// RFC 2831 fixes the nonce count of the first (and, without reauthentication, only) response.
const NONCE_COUNT: &str = "00000001";

/// One parsed directive of a DIGEST-MD5 token.
struct Directive {
    /// Lower-cased: RFC 2831 directive names are case-insensitive.
    name: String,
    value: String,
}

/// Parses `name=value, name="quoted value", ...` (RFC 2831 section 7.1, `#rule` lists with
/// optional whitespace and empty elements). Quoted values may contain commas and
/// backslash-escaped characters. Refuses anything that is not valid UTF-8, since the server
/// offers `charset=utf-8` and the JDK decodes tokens as UTF-8 too.
fn parse_directives(token: &[u8]) -> Result<Vec<Directive>, SaslError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(SaslError::Malformed(format!("token is {} bytes, more than {MAX_TOKEN_LEN}", token.len())));
    }
    let text = std::str::from_utf8(token).map_err(|_| SaslError::Malformed("token is not UTF-8".into()))?;
    let is_lws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let is_separator = |c: char| "()<>@,;:\\\"/[]?={} \t".contains(c);
    let mut out = Vec::new();
    let mut it = text.chars().peekable();
    loop {
        while it.peek().is_some_and(|&c| is_lws(c) || c == ',') {
            it.next();
        }
        if it.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(&c) = it.peek() {
            if is_separator(c) || c.is_control() {
                break;
            }
            name.push(c.to_ascii_lowercase());
            it.next();
        }
        if name.is_empty() {
            return Err(SaslError::Malformed("expected a directive name".into()));
        }
        while it.peek().is_some_and(|&c| is_lws(c)) {
            it.next();
        }
        if it.next() != Some('=') {
            return Err(SaslError::Malformed(format!("expected '=' after directive {name}")));
        }
        while it.peek().is_some_and(|&c| is_lws(c)) {
            it.next();
        }
        let mut value = String::new();
        if it.peek() == Some(&'"') {
            it.next();
            loop {
                match it.next() {
                    None => return Err(SaslError::Malformed(format!("unterminated quoted value of {name}"))),
                    Some('"') => break,
                    Some('\\') => match it.next() {
                        Some(c) => value.push(c),
                        None => return Err(SaslError::Malformed(format!("unterminated quoted value of {name}"))),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = it.peek() {
                if c == ',' || is_lws(c) {
                    break;
                }
                if c == '"' || c.is_control() {
                    return Err(SaslError::Malformed(format!("unexpected character in value of {name}")));
                }
                value.push(c);
                it.next();
            }
            if value.is_empty() {
                return Err(SaslError::Malformed(format!("empty value for {name}")));
            }
        }
        while it.peek().is_some_and(|&c| is_lws(c)) {
            it.next();
        }
        match it.peek() {
            None | Some(',') => {}
            Some(_) => return Err(SaslError::Malformed(format!("expected ',' after the value of {name}"))),
        }
        if out.len() == MAX_DIRECTIVES {
            return Err(SaslError::Malformed(format!("more than {MAX_DIRECTIVES} directives")));
        }
        out.push(Directive { name, value });
    }
}

/// Picks single-valued directives out of a token, refusing repeats of the ones this side
/// reads: a repeated `username` or `response` can only be an attempt to confuse a parser.
/// Unknown directives are ignored, as RFC 2831 requires.
fn single_values<'a>(directives: &'a [Directive], known: &[&str]) -> Result<BTreeMap<String, &'a str>, SaslError> {
    let mut map = BTreeMap::new();
    for d in directives {
        if known.contains(&d.name.as_str()) && map.insert(d.name.clone(), d.value.as_str()).is_some() {
            return Err(SaslError::Malformed(format!("directive {} appears more than once", d.name)));
        }
    }
    Ok(map)
}

/// Writes `value` as an RFC 2831 quoted-string.
fn quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// The bytes the JDK hashes for user name, realm and password: ISO-8859-1 when every character
/// fits (RFC 2831 section 2.1.2.1 asks for that conversion), otherwise UTF-8.
fn latin1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) <= 0xff) {
        s.chars().map(|c| c as u32 as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

/// The inputs of the RFC 2831 `response-value` computation.
struct DigestInputs<'a> {
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a str,
    cnonce: &'a str,
    authzid: Option<&'a str>,
    digest_uri: &'a str,
}

impl DigestInputs<'_> {
    /// `response-value` with A2 = `prefix ":" digest-uri`: prefix "AUTHENTICATE" gives the
    /// client's `response`, an empty prefix the server's `rspauth`. qop is always "auth".
    fn response_value(&self, a2_prefix: &str) -> String {
        let mut inner = Md5::new();
        inner.update(latin1_or_utf8(self.username));
        inner.update(b":");
        inner.update(latin1_or_utf8(self.realm));
        inner.update(b":");
        inner.update(latin1_or_utf8(self.password));
        let mut a1 = Md5::new();
        a1.update(inner.finalize());
        a1.update(b":");
        a1.update(self.nonce.as_bytes());
        a1.update(b":");
        a1.update(self.cnonce.as_bytes());
        if let Some(authzid) = self.authzid {
            a1.update(b":");
            a1.update(authzid.as_bytes());
        }
        let ha1 = hex::encode(a1.finalize());
        let ha2 = hex::encode(Md5::digest(format!("{a2_prefix}:{}", self.digest_uri).as_bytes()));
        let kd = format!("{ha1}:{}:{NONCE_COUNT}:{}:auth:{ha2}", self.nonce, self.cnonce);
        hex::encode(Md5::digest(kd.as_bytes()))
    }
}

/// Compares two byte strings without an early exit, so the time taken does not reveal how
/// many leading characters of a guessed response were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 30 random bytes in standard base64 (40 characters), the shape of the JDK's nonces.
fn random_nonce() -> String {
    let mut bytes = [0u8; 30];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Start,
    Challenged,
    Succeeded,
    Failed,
}

/// The server side of one DIGEST-MD5 exchange. Create one per connection: it holds that
/// connection's nonce and is finished after one success or failure.
pub struct DigestMd5Server {
    protocol: String,
    server_name: String,
    users: Arc<BTreeMap<String, String>>,
    nonce: String,
    state: ServerState,
}

/// Names the users but never prints their passwords.
impl fmt::Debug for DigestMd5Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestMd5Server")
            .field("protocol", &self.protocol)
            .field("server_name", &self.server_name)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("nonce", &self.nonce)
            .field("state", &self.state)
            .finish()
    }
}

/// Directives the server reads from a response; repeats of these are refused.
const RESPONSE_DIRECTIVES: &[&str] = &[
    "username",
    "realm",
    "nonce",
    "cnonce",
    "nc",
    "qop",
    "digest-uri",
    "response",
    "maxbuf",
    "charset",
    "cipher",
    "authzid",
];

impl DigestMd5Server {
    /// `protocol` and `server_name` are "zookeeper"/"zk-sasl-md5" for client connections and
    /// "zookeeper-quorum"/"zk-quorum-sasl-md5" for quorum peers, as in ZooKeeper. The server
    /// name doubles as the realm. `users` maps user name to password.
    pub fn new(protocol: &str, server_name: &str, users: Arc<BTreeMap<String, String>>) -> Self {
        Self::with_nonce(protocol, server_name, users, random_nonce())
    }

    /// Like `new` with a fixed nonce, so tests can replay captured exchanges.
    pub fn with_nonce(protocol: &str, server_name: &str, users: Arc<BTreeMap<String, String>>, nonce: String) -> Self {
        DigestMd5Server {
            protocol: protocol.to_owned(),
            server_name: server_name.to_owned(),
            users,
            nonce,
            state: ServerState::Start,
        }
    }

    /// True once a client has authenticated.
    pub fn is_complete(&self) -> bool {
        self.state == ServerState::Succeeded
    }

    /// Feeds the client's next token. The first must be empty; the second is the digest
    /// response. Any error ends the exchange, and so does success: later calls fail.
    pub fn step(&mut self, token: &[u8]) -> Result<Step, SaslError> {
        match self.state {
            ServerState::Start => {
                if !token.is_empty() {
                    self.state = ServerState::Failed;
                    return Err(SaslError::Rejected("DIGEST-MD5 has no initial response".into()));
                }
                self.state = ServerState::Challenged;
                Ok(Step::Challenge(self.challenge().into_bytes()))
            }
            ServerState::Challenged => {
                // Whatever happens, this connection gets no second try with the same nonce.
                self.state = ServerState::Failed;
                let step = self.check_response(token)?;
                self.state = ServerState::Succeeded;
                Ok(step)
            }
            ServerState::Succeeded => Err(SaslError::Finished("complete")),
            ServerState::Failed => Err(SaslError::Finished("failed")),
        }
    }

    /// The JDK server's challenge for a single realm and qop "auth": it leaves out `qop` and
    /// `maxbuf` because they have their default values.
    fn challenge(&self) -> String {
        format!("realm={},nonce={},charset=utf-8,algorithm=md5-sess", quote(&self.server_name), quote(&self.nonce))
    }

    fn check_response(&self, token: &[u8]) -> Result<Step, SaslError> {
        let directives = parse_directives(token)?;
        let d = single_values(&directives, RESPONSE_DIRECTIVES)?;
        let required =
            |name: &str| d.get(name).copied().ok_or_else(|| SaslError::Malformed(format!("missing directive {name}")));
        let username = required("username")?;
        let realm = required("realm")?;
        let nonce = required("nonce")?;
        let cnonce = required("cnonce")?;
        let nc = required("nc")?;
        let digest_uri = required("digest-uri")?;
        let response = required("response")?;

        if realm != self.server_name {
            return Err(SaslError::Rejected(format!("realm {realm:?} was not offered")));
        }
        if !constant_time_eq(nonce.as_bytes(), self.nonce.as_bytes()) {
            return Err(SaslError::Rejected("nonce does not match the challenge".into()));
        }
        if nc != NONCE_COUNT {
            return Err(SaslError::Rejected(format!("nonce count must be {NONCE_COUNT}")));
        }
        match d.get("qop") {
            None | Some(&"auth") => {}
            Some(qop) => return Err(SaslError::Rejected(format!("qop {qop:?} not offered (only auth)"))),
        }
        if d.contains_key("cipher") {
            return Err(SaslError::Rejected("cipher given but no security layer was offered".into()));
        }
        if let Some(charset) = d.get("charset") {
            if !charset.eq_ignore_ascii_case("utf-8") {
                return Err(SaslError::Rejected(format!("charset {charset:?} not offered")));
            }
        }
        if let Some(maxbuf) = d.get("maxbuf") {
            if maxbuf.len() > 10 || !maxbuf.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SaslError::Malformed("maxbuf is not a number".into()));
            }
        }
        let expected_uri = format!("{}/{}", self.protocol, self.server_name);
        if digest_uri != expected_uri {
            return Err(SaslError::Rejected(format!("digest-uri {digest_uri:?} is not {expected_uri:?}")));
        }
        if cnonce.is_empty() {
            return Err(SaslError::Malformed("empty cnonce".into()));
        }
        let authzid = d.get("authzid").copied();

        // An unknown user costs the same hashing as a known one, so timing does not tell
        // which user names exist.
        let (password, known) = match self.users.get(username) {
            Some(p) => (p.as_str(), true),
            None => ("", false),
        };
        let inputs = DigestInputs { username, realm, password, nonce: &self.nonce, cnonce, authzid, digest_uri };
        let expected = inputs.response_value("AUTHENTICATE");
        let matches = constant_time_eq(response.as_bytes(), expected.as_bytes());
        if !(known && matches) {
            return Err(SaslError::AuthenticationFailed);
        }
        // ZooKeeper's callback handler authorizes any authzid; Roost takes the identity from
        // the authenticated user only.
        if let Some(authzid) = authzid {
            if authzid != username {
                return Err(SaslError::Rejected("authzid differs from the user name".into()));
            }
        }
        let rspauth = inputs.response_value("");
        Ok(Step::Success {
            token: Some(format!("rspauth={rspauth}").into_bytes()),
            authentication_id: username.to_owned(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Start,
    Responded,
    Verified,
    Failed,
}

/// The client side of DIGEST-MD5, for Roost members authenticating to each other and for
/// tests. The caller sends an empty first token itself, passes the server's challenge to
/// [`step`](Self::step), sends the result, and checks the server's final token with
/// [`verify_rspauth`](Self::verify_rspauth).
pub struct DigestMd5Client {
    username: String,
    password: String,
    protocol: String,
    server_name: String,
    cnonce: String,
    /// The rspauth the server must send back, known once the response is computed.
    expected_rspauth: Option<String>,
    state: ClientState,
}

/// Never prints the password or the expected rspauth (which is derived from it).
impl fmt::Debug for DigestMd5Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestMd5Client")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("protocol", &self.protocol)
            .field("server_name", &self.server_name)
            .field("state", &self.state)
            .finish()
    }
}

/// Directives the client reads from a challenge (besides `realm`, which may repeat).
const CHALLENGE_DIRECTIVES: &[&str] = &["nonce", "qop", "charset", "algorithm", "maxbuf", "stale", "cipher"];

impl DigestMd5Client {
    pub fn new(username: &str, password: &str, protocol: &str, server_name: &str) -> Self {
        Self::with_cnonce(username, password, protocol, server_name, random_nonce())
    }

    /// Like `new` with a fixed client nonce, so tests can reproduce a captured response.
    pub fn with_cnonce(username: &str, password: &str, protocol: &str, server_name: &str, cnonce: String) -> Self {
        DigestMd5Client {
            username: username.to_owned(),
            password: password.to_owned(),
            protocol: protocol.to_owned(),
            server_name: server_name.to_owned(),
            cnonce,
            expected_rspauth: None,
            state: ClientState::Start,
        }
    }

    /// Answers the server's challenge with a digest response (qop auth, no authzid).
    pub fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.state != ClientState::Start {
            return Err(SaslError::Finished(if self.state == ClientState::Failed { "failed" } else { "complete" }));
        }
        self.state = ClientState::Failed;
        let directives = parse_directives(challenge)?;
        let d = single_values(&directives, CHALLENGE_DIRECTIVES)?;
        let nonce = d.get("nonce").copied().ok_or_else(|| SaslError::Malformed("missing directive nonce".into()))?;
        match d.get("algorithm") {
            Some(a) if a.eq_ignore_ascii_case("md5-sess") => {}
            _ => return Err(SaslError::Rejected("algorithm must be md5-sess".into())),
        }
        if let Some(qop) = d.get("qop") {
            if !qop.split(',').any(|q| q.trim() == "auth") {
                return Err(SaslError::Rejected(format!("server does not offer qop auth ({qop:?})")));
            }
        }
        let utf8 = match d.get("charset") {
            None => false,
            Some(c) if c.eq_ignore_ascii_case("utf-8") => true,
            Some(c) => return Err(SaslError::Rejected(format!("unknown charset {c:?}"))),
        };
        // Several realms may be offered; prefer the one named like the server, as ZooKeeper's
        // realm is its server name, else the first.
        let realms: Vec<&str> = directives.iter().filter(|d| d.name == "realm").map(|d| d.value.as_str()).collect();
        let realm = realms.iter().find(|r| **r == self.server_name).or(realms.first()).copied().unwrap_or("");
        let digest_uri = format!("{}/{}", self.protocol, self.server_name);
        let inputs = DigestInputs {
            username: &self.username,
            realm,
            password: &self.password,
            nonce,
            cnonce: &self.cnonce,
            authzid: None,
            digest_uri: &digest_uri,
        };
        let response = inputs.response_value("AUTHENTICATE");
        self.expected_rspauth = Some(inputs.response_value(""));
        let mut out = String::new();
        if utf8 {
            out.push_str("charset=utf-8,");
        }
        out.push_str(&format!(
            "username={},realm={},nonce={},nc={NONCE_COUNT},cnonce={},digest-uri={},maxbuf=65536,response={response},qop=auth",
            quote(&self.username),
            quote(realm),
            quote(nonce),
            quote(&self.cnonce),
            quote(&digest_uri),
        ));
        self.state = ClientState::Responded;
        Ok(out.into_bytes())
    }

    /// Checks the server's final `rspauth=...` token, which proves the server knew the
    /// password (mutual authentication).
    pub fn verify_rspauth(&mut self, token: &[u8]) -> Result<(), SaslError> {
        if self.state != ClientState::Responded {
            return Err(SaslError::Finished(if self.state == ClientState::Verified { "complete" } else { "failed" }));
        }
        self.state = ClientState::Failed;
        let directives = parse_directives(token)?;
        let d = single_values(&directives, &["rspauth"])?;
        let got = d.get("rspauth").ok_or_else(|| SaslError::Malformed("missing directive rspauth".into()))?;
        let expected = self.expected_rspauth.as_deref().unwrap_or("");
        if expected.is_empty() || !constant_time_eq(got.as_bytes(), expected.as_bytes()) {
            return Err(SaslError::BadRspauth);
        }
        self.state = ClientState::Verified;
        Ok(())
    }

    /// True once the server's rspauth has been verified.
    pub fn is_complete(&self) -> bool {
        self.state == ClientState::Verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_parsing() {
        let ds = parse_directives(b" a=1 , B = \"x,\\\"y\\\\\" ,, c=\"\"").unwrap();
        let got: Vec<(&str, &str)> = ds.iter().map(|d| (d.name.as_str(), d.value.as_str())).collect();
        assert_eq!(got, vec![("a", "1"), ("b", "x,\"y\\"), ("c", "")]);
        assert!(parse_directives(b"").unwrap().is_empty());
    }

    #[test]
    fn quote_round_trips() {
        let v = "a\"b\\c,d";
        let ds = parse_directives(format!("k={}", quote(v)).as_bytes()).unwrap();
        assert_eq!(ds[0].value, v);
    }

    #[test]
    fn latin1_conversion_matches_the_jdk() {
        assert_eq!(latin1_or_utf8("é"), vec![0xe9]);
        assert_eq!(latin1_or_utf8("é€"), "é€".as_bytes());
    }
}
