//! Kerberos principal names and the identity ZooKeeper gives a SASL-authenticated connection.
//!
//! ZooKeeper's `SaslServerCallbackHandler` turns the SASL authentication id into the `sasl`
//! scheme id that ACLs name: it parses it as a Kerberos principal, maps it to a short name with
//! the `zookeeper.security.auth_to_local` rules (Hadoop's syntax, ZooKeeper's `KerberosName`),
//! then adds back the host and realm unless told to remove them. Roost must produce the same
//! ids, or ACLs written against ZooKeeper would stop matching.

use std::fmt;

use regex::{Captures, Regex, RegexBuilder};

use crate::error::SaslError;

/// Longest principal or authentication id accepted; real ones are well under 256 bytes.
pub const MAX_PRINCIPAL_LEN: usize = 4096;
/// Longest auth_to_local rule string accepted.
pub const MAX_RULES_LEN: usize = 64 * 1024;
/// Compiled-size cap for a rule's regular expressions, so a pathological rule cannot eat memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A principal `service[/host]@REALM`, or a bare user name (from DIGEST-MD5), which has only
/// `service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosName {
    pub service: String,
    pub host: Option<String>,
    pub realm: Option<String>,
}

impl KerberosName {
    /// Parses like ZooKeeper's `KerberosName` constructor: `primary[/instance]@REALM` where no
    /// part contains '/' or '@'. Without an '@' the whole string is the service name (so
    /// `a/b` is a service called `a/b`); with an '@' that does not fit the pattern it is an error.
    pub fn parse(s: &str) -> Result<Self, SaslError> {
        if s.len() > MAX_PRINCIPAL_LEN {
            return Err(SaslError::MalformedKerberosName(format!("{} bytes long", s.len())));
        }
        if !s.contains('@') {
            return Ok(KerberosName { service: s.to_owned(), host: None, realm: None });
        }
        let malformed = || SaslError::MalformedKerberosName(s.to_owned());
        let (left, realm) = s.split_once('@').ok_or_else(malformed)?;
        if realm.contains(['@', '/']) {
            return Err(malformed());
        }
        let (service, host) = match left.split_once('/') {
            Some((service, host)) if !host.contains('/') => (service, Some(host.to_owned())),
            Some(_) => return Err(malformed()),
            None => (left, None),
        };
        Ok(KerberosName { service: service.to_owned(), host, realm: Some(realm.to_owned()) })
    }
}

/// Prints the principal in its usual `service/host@REALM` form.
impl fmt::Display for KerberosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.service)?;
        if let Some(host) = &self.host {
            write!(f, "/{host}")?;
        }
        if let Some(realm) = &self.realm {
            write!(f, "@{realm}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Rule {
    /// `DEFAULT`: `x@R` and `x/h@R` map to `x` when R is the default realm.
    Default { lowercase: bool },
    /// `RULE:[n:format](match)s/from/to/g/L`.
    Rule {
        /// Applies only to principals with exactly this many components (service, host).
        components: usize,
        /// `$0` is the realm, `$1` the service, `$2` the host.
        format: String,
        /// Must match the whole formatted string, if present.
        matches: Option<Regex>,
        /// sed-style substitution applied to the formatted string, if present.
        substitution: Option<(Regex, String, bool)>,
        lowercase: bool,
    },
}

/// The `zookeeper.security.auth_to_local` rules, tried in order until one applies.
#[derive(Debug, Clone)]
pub struct AuthToLocal {
    rules: Vec<Rule>,
    /// The realm `DEFAULT` strips. ZooKeeper uses the Kerberos library's default realm, or ""
    /// when there is no Kerberos configuration (`parse` with `None`).
    default_realm: String,
}

/// `DEFAULT` with no default realm: what ZooKeeper runs with when no rules are configured.
impl Default for AuthToLocal {
    fn default() -> Self {
        AuthToLocal { rules: vec![Rule::Default { lowercase: false }], default_realm: String::new() }
    }
}

/// Builds a regex the way the rules need it, with a size cap.
fn compile(pattern: &str, rule: &str) -> Result<Regex, SaslError> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| SaslError::InvalidRule(format!("{rule}: bad regular expression {pattern:?}: {e}")))
}

impl AuthToLocal {
    /// Parses rules separated by whitespace (newlines or spaces), each `DEFAULT` or
    /// `RULE:[n:format](regex)s/pattern/replacement/[g]`, optionally followed by `/L` to
    /// lower-case the result (Hadoop's extension). Regexes use Rust `regex` syntax, which agrees
    /// with Java's for the character classes, anchors and groups rules use in practice.
    pub fn parse(rules: &str, default_realm: Option<String>) -> Result<Self, SaslError> {
        if rules.len() > MAX_RULES_LEN {
            return Err(SaslError::InvalidRule(format!("rules are {} bytes long", rules.len())));
        }
        // The grammar of ZooKeeper's and Hadoop's rule parser, applied at the start of what is left.
        let parser =
            Regex::new(r"^\s*(?:(DEFAULT)|RULE:\[(\d*):([^\]]*)\](?:\(([^)]*)\))?(?:s/([^/]*)/([^/]*)/(g)?)?)/?(L)?")
                .map_err(|e| SaslError::InvalidRule(e.to_string()))?;
        let mut parsed = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            let caps = parser.captures(rest).ok_or_else(|| SaslError::InvalidRule(rest.to_owned()))?;
            let whole = caps.get(0).map_or("", |m| m.as_str());
            let lowercase = caps.get(8).is_some();
            if caps.get(1).is_some() {
                parsed.push(Rule::Default { lowercase });
            } else {
                let text = whole.trim();
                let n = caps.get(2).map_or("", |m| m.as_str());
                let components = n
                    .parse::<usize>()
                    .map_err(|_| SaslError::InvalidRule(format!("{text}: bad component count {n:?}")))?;
                let format = caps.get(3).map_or("", |m| m.as_str()).to_owned();
                // Java's `matches()` is a whole-string match.
                let matches = caps.get(4).map(|m| compile(&format!("^(?:{})$", m.as_str()), text)).transpose()?;
                let substitution = match (caps.get(5), caps.get(6)) {
                    (Some(from), Some(to)) => {
                        Some((compile(from.as_str(), text)?, to.as_str().to_owned(), caps.get(7).is_some()))
                    }
                    _ => None,
                };
                parsed.push(Rule::Rule { components, format, matches, substitution, lowercase });
            }
            rest = &rest[whole.len()..];
        }
        Ok(AuthToLocal { rules: parsed, default_realm: default_realm.unwrap_or_default() })
    }

    /// The short name of a principal: a bare name (no host, no realm) is its own short name;
    /// otherwise the first rule that applies decides. No applicable rule, or a rule whose result
    /// still contains '/' or '@', is an error.
    pub fn short_name(&self, name: &KerberosName) -> Result<String, SaslError> {
        let params: Vec<&str> = match (&name.host, &name.realm) {
            (None, None) => return Ok(name.service.clone()),
            (None, Some(realm)) => vec![realm, &name.service],
            (Some(host), realm) => vec![realm.as_deref().unwrap_or(""), &name.service, host],
        };
        for rule in &self.rules {
            if let Some(short) = self.apply(rule, &params)? {
                return Ok(short);
            }
        }
        Err(SaslError::NoMatchingRule(name.to_string()))
    }

    fn apply(&self, rule: &Rule, params: &[&str]) -> Result<Option<String>, SaslError> {
        let (result, lowercase) = match rule {
            Rule::Default { lowercase } => {
                let service = params.get(1).filter(|_| params.first() == Some(&self.default_realm.as_str()));
                (service.map(|s| (*s).to_owned()), *lowercase)
            }
            Rule::Rule { components, format, matches, substitution, lowercase } => {
                if params.len() - 1 != *components {
                    return Ok(None);
                }
                let base = replace_parameters(format, params)?;
                if matches.as_ref().is_some_and(|m| !m.is_match(&base)) {
                    return Ok(None);
                }
                let result = match substitution {
                    None => base,
                    Some((from, to, global)) => substitute(&base, from, to, *global)?,
                };
                (Some(result), *lowercase)
            }
        };
        match result {
            Some(r) if r.contains(['/', '@']) => {
                Err(SaslError::NoMatchingRule(format!("non-simple name {r:?} after an auth_to_local rule")))
            }
            Some(r) if lowercase => Ok(Some(r.to_lowercase())),
            other => Ok(other),
        }
    }
}

/// Expands `$0`, `$1`, `$2` in a rule's format. A `$` without digits, or a number with no
/// component, is an error (ZooKeeper's `BadFormatString`).
fn replace_parameters(format: &str, params: &[&str]) -> Result<String, SaslError> {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            digits.push(d);
            chars.next();
        }
        let index: usize =
            digits.parse().map_err(|_| SaslError::BadFormatString(format!("bad parameter {digits:?} in {format}")))?;
        let range = format!("index {index} in {format} is outside the valid range 0 to {}", params.len() - 1);
        // ZooKeeper checks `index > params.length`, so one past the end fails differently.
        let value = match params.get(index) {
            Some(v) => v,
            None if index == params.len() => return Err(SaslError::RuleFailed(range)),
            None => return Err(SaslError::BadFormatString(range)),
        };
        out.push_str(value);
    }
    Ok(out)
}

/// `String.replaceFirst`/`replaceAll` with Java's replacement syntax: `$n` (as many digits as
/// still name a group), `${name}`, and `\x` for a literal x.
fn substitute(base: &str, from: &Regex, to: &str, global: bool) -> Result<String, SaslError> {
    let mut out = String::new();
    let mut last = 0;
    for caps in from.captures_iter(base) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&base[last..m.start()]);
        expand_java_replacement(&caps, from, to, &mut out)?;
        last = m.end();
        if !global {
            break;
        }
    }
    out.push_str(&base[last..]);
    Ok(out)
}

fn expand_java_replacement(caps: &Captures<'_>, re: &Regex, to: &str, out: &mut String) -> Result<(), SaslError> {
    let bad = |why: &str| SaslError::RuleFailed(format!("replacement {to:?}: {why}"));
    let group_count = re.captures_len() - 1;
    let mut chars = to.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().ok_or_else(|| bad("trailing backslash"))?),
            '$' => {
                let group = if chars.peek() == Some(&'{') {
                    chars.next();
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_alphanumeric() => name.push(c),
                            _ => return Err(bad("unterminated or invalid ${name}")),
                        }
                    }
                    if re.capture_names().flatten().all(|n| n != name) {
                        return Err(bad(&format!("no group named {name}")));
                    }
                    caps.name(&name)
                } else {
                    let first =
                        chars.next().and_then(|d| d.to_digit(10)).ok_or_else(|| bad("illegal group reference"))?;
                    let mut num = first as usize;
                    // Java takes further digits only while the number still names a group.
                    while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                        let next = num * 10 + d as usize;
                        if next > group_count {
                            break;
                        }
                        num = next;
                        chars.next();
                    }
                    if num > group_count {
                        return Err(bad(&format!("no group {num}")));
                    }
                    caps.get(num)
                };
                if let Some(m) = group {
                    out.push_str(m.as_str());
                }
            }
            c => out.push(c),
        }
    }
    Ok(())
}

/// How authentication ids become `sasl` ids: ZooKeeper's `zookeeper.security.auth_to_local`,
/// `zookeeper.kerberos.removeHostFromPrincipal` and `zookeeper.kerberos.removeRealmFromPrincipal`.
#[derive(Debug, Clone, Default)]
pub struct SaslIdOptions {
    pub rules: AuthToLocal,
    pub remove_host: bool,
    pub remove_realm: bool,
}

/// The id ZooKeeper gives a connection after SASL: the short name, then "/" + host unless
/// `remove_host`, then "@" + realm unless `remove_realm`. With defaults this is the full
/// principal ("client@KAZOOTEST.ORG") or the DIGEST user name ("jaasuser").
///
/// When no rule maps a well-formed principal (or a format string is bad), ZooKeeper logs the
/// failure and keeps the authorization id, which is the authentication id itself (Roost refuses
/// any other authzid); this does the same, ignoring the remove flags as ZooKeeper does. A
/// malformed principal or a rule that cannot be applied ([`SaslError::RuleFailed`]) is an
/// error, as both fail the authentication in ZooKeeper.
pub fn sasl_identity(authentication_id: &str, opts: &SaslIdOptions) -> Result<String, SaslError> {
    let name = KerberosName::parse(authentication_id)?;
    let mut id = match opts.rules.short_name(&name) {
        Ok(id) => id,
        Err(SaslError::NoMatchingRule(_) | SaslError::BadFormatString(_)) => return Ok(authentication_id.to_owned()),
        Err(e) => return Err(e),
    };
    if let (false, Some(host)) = (opts.remove_host, &name.host) {
        id.push('/');
        id.push_str(host);
    }
    if let (false, Some(realm)) = (opts.remove_realm, &name.realm) {
        id.push('@');
        id.push_str(realm);
    }
    Ok(id)
}

/// ZooKeeper's `isSaslSuperUser`: `id` equals the value of `zookeeper.superUser` or of any
/// `zookeeper.superUser.<suffix>`; the caller passes those values. An empty id never is.
pub fn is_super_user(id: &str, super_users: &[String]) -> bool {
    !id.is_empty() && super_users.iter().any(|s| s == id)
}
