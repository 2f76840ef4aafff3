//! The audit log (`audit.enable=true`): one line per write and per ephemeral removed with its
//! session, in ZooKeeper's format, so the tools that read `zookeeper_audit.log` read ours.
//!
//! A line is `<ISO8601 time> <LEVEL> audit.Slf4jAuditLogger: ` followed by `key=value` pairs joined
//! by tabs in ZooKeeper's order (`AuditEvent.toString`), absent fields left out. Failures are
//! logged at ERROR, everything else at INFO, as `Slf4jAuditLogger` does.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use parking_lot::Mutex;

use crate::http::format::civil_from_days;
use crate::proto::types::{perms, Acl, CreateMode, ErrorCode, Id};
use crate::tree::txn::{OpResult, TxnOp};

/// `result=` of an audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditResult {
    Success,
    Failure,
    Invoked,
}

impl AuditResult {
    fn as_str(self) -> &'static str {
        match self {
            AuditResult::Success => "success",
            AuditResult::Failure => "failure",
            AuditResult::Invoked => "invoked",
        }
    }
}

/// One audit event; `None` fields are left out of the line.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub session: Option<i64>,
    pub user: Option<String>,
    pub ip: Option<String>,
    pub operation: &'static str,
    pub znode: Option<String>,
    pub znode_type: Option<&'static str>,
    pub acl: Option<String>,
}

impl AuditEvent {
    /// The `key=value` part of the line.
    pub fn format(&self, result: AuditResult) -> String {
        let mut line = String::with_capacity(128);
        let mut field = |key: &str, value: &str| {
            if !line.is_empty() {
                line.push('\t');
            }
            let _ = write!(line, "{key}={}", escape_controls(value));
        };
        if let Some(session) = self.session {
            field("session", &format!("0x{session:x}"));
        }
        if let Some(user) = &self.user {
            field("user", user);
        }
        if let Some(ip) = &self.ip {
            field("ip", ip);
        }
        field("operation", self.operation);
        if let Some(znode) = &self.znode {
            field("znode", znode);
        }
        if let Some(kind) = self.znode_type {
            field("znode_type", kind);
        }
        if let Some(acl) = &self.acl {
            field("acl", acl);
        }
        field("result", result.as_str());
        line
    }
}

/// Control characters from clients (paths, user names) are escaped, so no one can forge a line.
fn escape_controls(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.chars().any(char::is_control) {
        return value.into();
    }
    value.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// `AuthUtil.getUsers`: the user names of a connection's ids, comma-separated; ids without a
/// user (`super`, `world`) are left out. `None` when nothing is left.
pub fn users(ids: &[Id]) -> Option<String> {
    let names: Vec<&str> = ids
        .iter()
        .filter_map(|id| match id.scheme.as_str() {
            "digest" => id.id.split(':').next(),
            "ip" | "x509" | "sasl" => Some(id.id.as_str()),
            _ => None,
        })
        .filter(|n| !n.is_empty())
        .collect();
    (!names.is_empty()).then(|| names.join(","))
}

/// `ZKUtil.aclToString`: `scheme:id:perms` per entry with perms in `cdrwa` order, no separator.
pub fn acl_string(acl: &[Acl]) -> String {
    let mut out = String::new();
    for entry in acl {
        let _ = write!(out, "{}:{}:", entry.id.scheme, entry.id.id);
        for (bit, letter) in
            [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')]
        {
            if entry.perms & bit != 0 {
                out.push(letter);
            }
        }
    }
    out
}

/// `znode_type=`: ZooKeeper's `CreateMode` in lower case.
fn znode_type(mode: CreateMode) -> &'static str {
    match mode {
        CreateMode::Persistent => "persistent",
        CreateMode::Ephemeral => "ephemeral",
        CreateMode::PersistentSequential => "persistent_sequential",
        CreateMode::EphemeralSequential => "ephemeral_sequential",
        CreateMode::Container => "container",
        CreateMode::PersistentWithTtl => "persistent_with_ttl",
        CreateMode::PersistentSequentialWithTtl => "persistent_sequential_with_ttl",
    }
}

/// Who made a change: the connection's session, user names and address.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub session: Option<i64>,
    pub user: Option<String>,
    pub ip: Option<String>,
}

impl Actor {
    /// From a connection's identities (its address is its `ip` id).
    pub fn new(session: Option<i64>, ids: &[Id]) -> Actor {
        let ip = ids.iter().find(|id| id.scheme == "ip").map(|id| id.id.clone());
        Actor { session, user: users(ids), ip }
    }

    pub fn event(&self, operation: &'static str) -> AuditEvent {
        AuditEvent {
            session: self.session,
            user: self.user.clone(),
            ip: self.ip.clone(),
            operation,
            ..Default::default()
        }
    }
}

/// The audit lines a write will produce, decided before it is proposed (`AuditHelper.addAuditLog`).
#[derive(Debug, Clone)]
pub struct WriteAudit {
    actor: Actor,
    /// One per audited op with its index among the multi's ops (checks are not audited).
    ops: Vec<(usize, AuditEvent)>,
    multi: bool,
}

impl WriteAudit {
    /// `None` for ops ZooKeeper does not audit.
    pub fn describe(actor: Actor, op: &TxnOp) -> Option<WriteAudit> {
        let (ops, multi) = match op {
            TxnOp::Multi(sub) => {
                (sub.iter().enumerate().filter_map(|(i, o)| Some((i, Self::one(&actor, o)?))).collect(), true)
            }
            other => (vec![(0, Self::one(&actor, other)?)], false),
        };
        Some(WriteAudit { actor, ops, multi })
    }

    fn one(actor: &Actor, op: &TxnOp) -> Option<AuditEvent> {
        let event = match op {
            TxnOp::Create { path, mode, .. } => {
                let mut e = actor.event("create");
                e.znode = Some(path.clone());
                e.znode_type = Some(znode_type(*mode));
                e
            }
            TxnOp::Delete { path, .. } | TxnOp::DeleteContainer { path } => {
                let mut e = actor.event("delete");
                e.znode = Some(path.clone());
                e
            }
            TxnOp::SetData { path, .. } => {
                let mut e = actor.event("setData");
                e.znode = Some(path.clone());
                e
            }
            TxnOp::SetAcl { path, acl, .. } => {
                let mut e = actor.event("setAcl");
                e.znode = Some(path.clone());
                e.acl = Some(acl_string(acl));
                e
            }
            TxnOp::SetConfig { .. } => {
                let mut e = actor.event("reconfig");
                e.znode = Some("/zookeeper/config".to_string());
                e
            }
            _ => return None,
        };
        Some(event)
    }

    /// Logs the outcome: a successful multi as one line per sub-op, a failed one as a single
    /// `multiOperation` failure; anything else as one line with its result.
    pub fn log(&self, log: &AuditLog, result: &Result<OpResult, ErrorCode>) {
        let failed = match result {
            Ok(OpResult::Multi(results)) => results.iter().any(|r| matches!(r, Err(code) if *code != ErrorCode::Ok)),
            Ok(_) => false,
            Err(_) => true,
        };
        if self.multi && failed {
            log.log(&self.actor.event("multiOperation"), AuditResult::Failure);
            return;
        }
        let outcome = if failed { AuditResult::Failure } else { AuditResult::Success };
        for (index, event) in &self.ops {
            // A sequential create is audited with the path it got.
            let created = match result {
                Ok(OpResult::Created { path, .. }) => Some(path),
                Ok(OpResult::Multi(results)) => match results.get(*index) {
                    Some(Ok(OpResult::Created { path, .. })) => Some(path),
                    _ => None,
                },
                _ => None,
            };
            match created {
                Some(path) => log.log(&AuditEvent { znode: Some(path.clone()), ..event.clone() }, outcome),
                None => log.log(event, outcome),
            }
        }
    }
}

/// The user a server acts as: the owner of the process, as ZooKeeper names the OS user.
pub fn server_user() -> String {
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next().map(String::from))
    });
    let from_passwd = uid.and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 2 && fields[2] == uid).then(|| fields[0].to_string())
        })
    });
    from_passwd.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".to_string())
}

/// The audit log file. Lines are appended whole, one write each, so concurrent writers never
/// interleave within a line.
pub struct AuditLog {
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        tracing::info!(file = %path.display(), "audit log enabled");
        Ok(AuditLog { file: Mutex::new(file) })
    }

    /// A server-side event with no client: `serverStart`, `serverStop`, and the ephemerals a
    /// closed or expired session loses (`ephemeralZNodeDeletionOnSessionCloseOrExpire`).
    pub fn log_server(&self, operation: &'static str, session: Option<i64>, znode: Option<&str>, result: AuditResult) {
        let event = AuditEvent {
            session,
            user: Some(server_user()),
            operation,
            znode: znode.map(str::to_string),
            ..Default::default()
        };
        self.log(&event, result);
    }

    pub fn log(&self, event: &AuditEvent, result: AuditResult) {
        let level = if result == AuditResult::Failure { "ERROR" } else { "INFO" };
        let now = chrono_like_now();
        let line = format!("{now} {level} audit.Slf4jAuditLogger: {}\n", event.format(result));
        if let Err(e) = self.file.lock().write_all(line.as_bytes()) {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
    }
}

/// Local time as log4j/logback's ISO8601 pattern prints it: `2026-12-04 16:40:01,123` (UTC here).
fn chrono_like_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02},{:03}", rem / 3600, rem / 60 % 60, rem % 60, now.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_zookeepers_fields_in_order() {
        let event = AuditEvent {
            session: Some(0x19344730000),
            user: users(&[Id::new("ip", "192.168.1.2"), Id::new("sasl", "zkcli@HADOOP.COM")]),
            ip: Some("192.168.1.2".into()),
            operation: "create",
            znode: Some("/a".into()),
            znode_type: Some("persistent"),
            acl: None,
        };
        assert_eq!(
            event.format(AuditResult::Success),
            "session=0x19344730000\tuser=192.168.1.2,zkcli@HADOOP.COM\tip=192.168.1.2\toperation=create\tznode=/a\tznode_type=persistent\tresult=success"
        );
    }

    #[test]
    fn users_drop_super_and_keep_digest_names() {
        let ids = [Id::new("super", ""), Id::new("digest", "bob:abc="), Id::new("x509", "CN=client")];
        assert_eq!(users(&ids).as_deref(), Some("bob,CN=client"));
        assert_eq!(users(&[Id::new("super", "")]), None);
    }

    #[test]
    fn acl_string_is_zkutil_format() {
        let acl = vec![
            Acl { perms: perms::ALL, id: Id::new("world", "anyone") },
            Acl { perms: perms::READ | perms::ADMIN, id: Id::new("digest", "bob:x") },
        ];
        assert_eq!(acl_string(&acl), "world:anyone:cdrwadigest:bob:x:ra");
    }

    #[test]
    fn control_characters_cannot_forge_lines() {
        let event = AuditEvent { operation: "create", znode: Some("/a\nresult=success".into()), ..Default::default() };
        assert_eq!(event.format(AuditResult::Failure), "operation=create\tznode=/a\\nresult=success\tresult=failure");
    }

    #[test]
    fn a_failed_multi_is_one_multi_operation_line() {
        let actor = Actor::new(Some(0x10), &[Id::new("ip", "10.0.0.1")]);
        let multi = TxnOp::Multi(vec![
            TxnOp::Create { path: "/a".into(), data: None, acl: vec![], mode: CreateMode::Persistent, ttl_ms: None },
            TxnOp::Check { path: "/b".into(), version: 1 },
            TxnOp::SetData { path: "/c".into(), data: None, version: -1 },
        ]);
        let audit = WriteAudit::describe(actor, &multi).unwrap();
        assert_eq!(audit.ops.len(), 2, "the check is not audited");
        assert_eq!(audit.ops[0].1.format(AuditResult::Success), "session=0x10\tuser=10.0.0.1\tip=10.0.0.1\toperation=create\tznode=/a\tznode_type=persistent\tresult=success");
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join("audit.log")).unwrap();
        audit.log(
            &log,
            &Ok(OpResult::Multi(vec![
                Err(ErrorCode::Ok),
                Err(ErrorCode::BadVersion),
                Err(ErrorCode::RuntimeInconsistency),
            ])),
        );
        audit
            .log(&log, &Ok(OpResult::Multi(vec![Ok(OpResult::Deleted), Ok(OpResult::Checked), Ok(OpResult::Deleted)])));
        let text = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains(" ERROR audit.Slf4jAuditLogger: session=0x10\tuser=10.0.0.1\tip=10.0.0.1\toperation=multiOperation\tresult=failure"), "{text}");
        assert!(lines[1].ends_with("operation=create\tznode=/a\tznode_type=persistent\tresult=success"), "{text}");
        assert!(
            lines[2].contains(" INFO ") && lines[2].ends_with("operation=setData\tznode=/c\tresult=success"),
            "{text}"
        );
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_426), (2025, 12, 4));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
