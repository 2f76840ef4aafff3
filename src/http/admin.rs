//! Operator endpoints: `/api/v1/cluster`, `/api/v1/sessions`, ZooKeeper AdminServer-style
//! `/commands/<name>` (JSON) and Prometheus `/metrics`, all from the backend's figures.

use axum::extract::{Path, State as AxState};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::backend::ClusterInfo;
use super::codec::session_hex;
use super::error::ApiError;
use super::State;
use crate::proto::types::Id;

/// `GET /api/v1/cluster`
pub async fn cluster(AxState(state): AxState<State>) -> Json<ClusterInfo> {
    Json(state.backend.cluster())
}

/// Sessions as JSON, ids as ZooKeeper prints them (hex).
pub fn sessions_json(state: &State, auth: &[Id]) -> Value {
    let list: Vec<Value> = super::zk_session::sessions(state, auth)
        .into_iter()
        .map(|s| json!({ "id": session_hex(s.id), "timeoutMs": s.timeout_ms, "client": s.client, "ephemerals": s.ephemerals }))
        .collect();
    json!({ "sessions": list })
}

/// `GET /api/v1/sessions`
pub async fn sessions(AxState(state): AxState<State>, caller: Caller) -> Json<Value> {
    Json(sessions_json(&state, &caller.ids))
}

/// A mntr/conf value as JSON: a number when it is one.
fn typed(v: &str) -> Value {
    if let Ok(i) = v.parse::<i64>() {
        return json!(i);
    }
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() => json!(f),
        _ => json!(v),
    }
}

fn pairs_json(pairs: Vec<(String, String)>, strip: &str) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.strip_prefix(strip).unwrap_or(&k).to_owned(), typed(&v))).collect()
}

/// The commands served, with their aliases (AdminServer names first, 4lw names after).
pub const COMMANDS: &[(&str, &[&str])] = &[
    ("monitor", &["mntr"]),
    ("ruok", &[]),
    ("server_stats", &["srvr", "stats"]),
    ("configuration", &["conf", "config"]),
    ("is_read_only", &["isro"]),
    ("leader", &["lead"]),
    ("voting_view", &["vview"]),
    ("sessions", &["cons", "connections"]),
    ("watches_by_path", &["wchp"]),
    // Served by `super::backup` (a stream, and a POST), listed here for `/commands`.
    ("snapshot", &["snap"]),
    ("restore", &["rest"]),
];

fn canonical(name: &str) -> Option<&'static str> {
    COMMANDS.iter().find(|(n, aliases)| *n == name || aliases.contains(&name)).map(|(n, _)| *n)
}

/// `GET /commands`: the list of commands.
pub async fn command_list() -> Json<Value> {
    let names: Vec<Value> = COMMANDS.iter().map(|(n, a)| json!({ "command": n, "aliases": a })).collect();
    Json(json!({ "commands": names }))
}

/// The body of one AdminServer command, without the `command`/`error` envelope.
pub fn command_body(state: &State, name: &str, auth: &[Id]) -> Option<(&'static str, Map<String, Value>)> {
    let cmd = canonical(name)?;
    let b = &state.backend;
    let body = match cmd {
        "monitor" => pairs_json(b.mntr(), "zk_"),
        "ruok" => Map::new(),
        "server_stats" => {
            let mut m = pairs_json(b.mntr(), "zk_");
            let c = b.cluster();
            let me = c.members.iter().find(|m| m.id == c.this_id);
            m.insert("server_state".into(), json!(me.map(|m| m.role.clone()).unwrap_or_default()));
            m.insert("zxid".into(), json!(me.map(|m| m.zxid).unwrap_or(0)));
            m.insert("version".into(), json!(c.version));
            m
        }
        "configuration" => pairs_json(b.conf(), ""),
        "is_read_only" => {
            let mut m = Map::new();
            m.insert("read_only".into(), json!(b.read_only()));
            m
        }
        "leader" => {
            let c = b.cluster();
            let leader = c.members.iter().find(|m| Some(m.id) == c.leader_id);
            let mut m = Map::new();
            m.insert("is_leader".into(), json!(c.leader_id == Some(c.this_id)));
            m.insert("leader_id".into(), json!(c.leader_id));
            m.insert("leader_ip".into(), json!(leader.map(|l| l.address.clone())));
            m
        }
        "voting_view" => {
            let c = b.cluster();
            let mut m = Map::new();
            let view: Map<String, Value> = c.members.iter().map(|mm| (mm.id.to_string(), json!(mm.address))).collect();
            m.insert("current_config".into(), Value::Object(view));
            m
        }
        "watches_by_path" => {
            let map: Map<String, Value> = b
                .watches_by_path()
                .into_iter()
                .map(|(path, ids)| (path, json!(ids.into_iter().map(session_hex).collect::<Vec<_>>())))
                .collect();
            let mut m = Map::new();
            m.insert("path_to_session_ids".into(), Value::Object(map));
            m
        }
        "sessions" => match sessions_json(state, auth) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        _ => return None,
    };
    Some((cmd, body))
}

/// `GET /commands/<name>`: `{"command": name, "error": null, ...fields}`.
pub async fn command(
    AxState(state): AxState<State>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (cmd, mut body) = command_body(&state, &name, &caller.ids).ok_or(ApiError::NotFound)?;
    body.insert("command".into(), json!(cmd));
    body.insert("error".into(), Value::Null);
    Ok(Json(Value::Object(body)))
}

/// A Prometheus metric name from a mntr key.
fn metric_name(key: &str) -> String {
    let mut s: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if !s.starts_with("zk_") {
        s.insert_str(0, "zk_");
    }
    s
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Prometheus text exposition of mntr: numeric figures as gauges, text figures as
/// `<name>_info{value="..."} 1`.
pub fn prometheus_text(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        let name = metric_name(k);
        match v.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => out.push_str(&format!("# TYPE {name} gauge\n{name} {n}\n")),
            _ => out.push_str(&format!("# TYPE {name}_info gauge\n{name}_info{{value=\"{}\"}} 1\n", escape_label(v))),
        }
    }
    out
}

/// `GET /metrics`
pub async fn metrics(AxState(state): AxState<State>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], prometheus_text(&state.backend.mntr()))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mntr_becomes_prometheus_text() {
        let text = prometheus_text(&[
            ("zk_avg_latency".into(), "1.5".into()),
            ("zk_znode_count".into(), "7".into()),
            ("zk_server_state".into(), "leader".into()),
        ]);
        assert!(text.contains("zk_avg_latency 1.5\n"));
        assert!(text.contains("zk_znode_count 7\n"));
        assert!(text.contains("zk_server_state_info{value=\"leader\"} 1\n"));
    }

    #[test]
    fn aliases_resolve() {
        assert_eq!(canonical("mntr"), Some("monitor"));
        assert_eq!(canonical("srvr"), Some("server_stats"));
        assert_eq!(canonical("nope"), None);
    }
}
