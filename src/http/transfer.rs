//! Export and import of subtrees: our readable JSON format (`roost-export-1`) and
//! ZooNavigator's export files (a gzip-compressed, or plain, JSON array of
//! `{"h": {"acl", "path", "data"}, "t": [children]}` trees), both imported in one multi.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State as AxState};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::tree::txn::TxnOp;

use super::auth::Caller;
use super::codec::{self, acl_from_json, AclIn, Encoding};
use super::error::ApiError;
use super::jobs::{self, JobMode};
use super::ops::run_ops;
use super::znode::input_data;
use super::State;

/// One node of an export, nested.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportNode {
    /// Name relative to the parent (the root: its own name, `""` for `/`).
    pub name: String,
    pub data: Option<String>,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub acl: Vec<AclJsonIn>,
    #[serde(default)]
    pub children: Vec<ExportNode>,
}

/// ACL entries as exported (same shape as [`AclJson`]), readable back.
#[derive(Debug, Serialize, Deserialize)]
pub struct AclJsonIn {
    pub scheme: String,
    pub id: String,
    pub perms: codec::PermsIn,
}

impl Serialize for codec::PermsIn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            codec::PermsIn::Bits(b) => s.serialize_str(&codec::perms_text(*b)),
            codec::PermsIn::Letters(l) => s.serialize_str(l),
        }
    }
}

/// Query of export.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    pub path: String,
    /// `auto` (default): a job (with progress at `/api/v1/jobs/<id>`, named by the
    /// `X-Roost-Job` header) above the multi limit; `always`; `never`.
    #[serde(default)]
    pub job: Option<JobMode>,
}

/// `GET /api/v1/export?path=/a`: the subtree as readable nested JSON (data as UTF-8
/// text when it is text, else base64), served as a download. It is streamed as the
/// subtree is walked (never held whole in memory), up to the job limit of nodes; ephemeral
/// nodes, and nodes the caller may not read (with their subtrees), are left out and
/// counted in the trailing `summary`. Each node is read on its own:
/// the export is not one snapshot of the subtree.
pub async fn export(
    AxState(state): AxState<State>,
    caller: Caller,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    codec::validate_path(&q.path, false)?;
    // Errors that need no walk (no such node, no READ) come as a JSON error, not a cut download.
    state.backend.children(&q.path, &caller.ids).map_err(|c| ApiError::zk(c, &q.path))?;
    let job = match q.job.unwrap_or(JobMode::Auto) {
        JobMode::Always => true,
        JobMode::Auto => jobs::readable_over(&state, &q.path, &caller.ids, state.opts.max_subtree_ops)?,
        JobMode::Never => false,
    };
    let job = if job { Some(jobs::register_export(&state, &caller.ids, &q.path)?) } else { None };
    let name = if q.path == "/" { "_root".to_owned() } else { q.path.replace('/', "_") };
    let file = format!("attachment; filename=\"znodes{name}.json\"");
    let mut resp = Response::new(jobs::export_stream(&state, q.path.clone(), caller.ids.clone(), job.clone()));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&file) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(job) = job {
        if let Ok(v) = HeaderValue::from_str(&job.id.to_string()) {
            h.insert("x-roost-job", v);
        }
    }
    Ok(resp)
}

/// Query of import.
#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    /// The parent under which the exported roots are created.
    pub path: String,
}

/// One node of a ZooNavigator export (its `Cofree` tree): head `h` and children `t`.
#[derive(Debug, Deserialize)]
struct ZooNavNode {
    h: ZooNavHeader,
    #[serde(default)]
    t: Vec<ZooNavNode>,
}

/// `path` is absolute, rebased so that each exported root is `/<its name>`; `data` is
/// base64; `acl` entries name their permissions in words.
#[derive(Debug, Deserialize)]
struct ZooNavHeader {
    path: String,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    acl: Vec<ZooNavAcl>,
}

#[derive(Debug, Deserialize)]
struct ZooNavAcl {
    scheme: String,
    id: String,
    permissions: Vec<String>,
}

fn zoonav_perms(words: &[String]) -> Result<String, ApiError> {
    words
        .iter()
        .map(|w| match w.as_str() {
            "create" => Ok('c'),
            "delete" => Ok('d'),
            "read" => Ok('r'),
            "write" => Ok('w'),
            "admin" => Ok('a'),
            other => Err(ApiError::bad_request(format!("ZooNavigator export: unknown permission {other:?}"))),
        })
        .collect()
}

fn zoonav_to_export(n: ZooNavNode) -> Result<ExportNode, ApiError> {
    let acl =
        n.h.acl
            .iter()
            .map(|a| {
                Ok(AclJsonIn {
                    scheme: a.scheme.clone(),
                    id: a.id.clone(),
                    perms: codec::PermsIn::Letters(zoonav_perms(&a.permissions)?),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(ExportNode {
        name: n.h.path.rsplit('/').next().unwrap_or("").to_owned(),
        data: n.h.data,
        encoding: Encoding::Base64,
        acl,
        children: n.t.into_iter().map(zoonav_to_export).collect::<Result<_, _>>()?,
    })
}

fn flatten_import(state: &State, parent: &str, node: &ExportNode, out: &mut Vec<TxnOp>) -> Result<(), ApiError> {
    let path = codec::join(parent, &node.name);
    codec::validate_path(&path, false)?;
    let acl_in: Vec<AclIn> =
        node.acl.iter().map(|a| AclIn { scheme: a.scheme.clone(), id: a.id.clone(), perms: a.perms.clone() }).collect();
    let enc = match node.encoding {
        Encoding::Utf8 => "utf8",
        Encoding::Base64 => "base64",
        Encoding::Hex => "hex",
    };
    out.push(TxnOp::Create {
        path: path.clone(),
        data: input_data(state, node.data.as_deref(), Some(enc))?,
        acl: acl_from_json(Some(&acl_in))?,
        mode: crate::proto::types::CreateMode::Persistent,
        ttl_ms: None,
    });
    if out.len() > state.opts.max_subtree_ops {
        return Err(ApiError::TooLarge(format!("more than {} nodes to import", state.opts.max_subtree_ops)));
    }
    node.children.iter().try_for_each(|c| flatten_import(state, &path, c, out))
}

/// Whether `bytes` start with gzip's magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Decompresses a gzip body, refusing one that inflates past `limit` bytes.
pub fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("not a valid gzip file: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::TooLarge(format!("the decompressed import is over {limit} bytes")));
    }
    Ok(out)
}

/// Our export document; other top-level fields (`format`, `source`) are ignored.
#[derive(Debug, Deserialize)]
struct ExportDoc {
    nodes: Vec<ExportNode>,
}

/// The nodes of an import document: ours (`{"format": "roost-export-1", "nodes": [...]}`)
/// or ZooNavigator's (a JSON array), either one plain or gzip-compressed. A compressed
/// document may inflate to at most `limit` bytes. The JSON is read straight into the typed
/// nodes, never into a generic document (which costs many times its size), and its
/// nesting is bounded by serde_json's recursion limit (128).
pub fn parse_import(body: &[u8], limit: usize) -> Result<Vec<ExportNode>, ApiError> {
    let plain;
    let json = if is_gzip(body) {
        plain = gunzip(body, limit)?;
        &plain[..]
    } else {
        body
    };
    match json.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => {
            let zn: Vec<ZooNavNode> = serde_json::from_slice(json)
                .map_err(|e| ApiError::bad_request(format!("not a ZooNavigator export: {e}")))?;
            zn.into_iter().map(zoonav_to_export).collect()
        }
        Some(b'{') => serde_json::from_slice::<ExportDoc>(json)
            .map(|doc| doc.nodes)
            .map_err(|e| ApiError::bad_request(format!("invalid export: {e}"))),
        _ => Err(ApiError::bad_request("an import is a JSON object (a Roost export) or array (a ZooNavigator export)")),
    }
}

/// `POST /api/v1/import?path=/parent` with an export file (ours, or ZooNavigator's
/// `.gz` export, compressed or not, whatever the Content-Type): creates all nodes under
/// `path` in one multi.
pub async fn import(
    AxState(state): AxState<State>,
    caller: Caller,
    q: Result<Query<ImportQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    codec::validate_path(&q.path, false)?;
    // Permission first: a caller who may not create under `path` costs no decompression
    // and no parsing, however large the document.
    let server = [crate::proto::types::Id::new("super", "")];
    let (parent_acl, _) = state.backend.get_acl(&q.path, &server).map_err(|c| ApiError::zk(c, &q.path))?;
    if !state.backend.check_perm(&parent_acl, &caller.ids, crate::proto::types::perms::CREATE) {
        return Err(ApiError::zk(crate::proto::types::ErrorCode::NoAuth, &q.path));
    }
    // A compressed document may inflate to the size a plain body may have.
    let roots = parse_import(&body?, state.opts.max_body_bytes)?;
    let mut ops = Vec::new();
    for r in &roots {
        if r.name.is_empty() {
            // An export of `/`: its top-level nodes, except ZooKeeper's own `/zookeeper`
            // (quota and config belong to the server, not to the data), under `path`.
            for c in r.children.iter().filter(|c| c.name != "zookeeper") {
                flatten_import(&state, &q.path, c, &mut ops)?;
            }
            continue;
        }
        flatten_import(&state, &q.path, r, &mut ops)?;
    }
    let results = run_ops(&state, ops, &caller.ids).await?;
    Ok(Json(serde_json::json!({ "created": results.len() })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The exact bytes shape ZooNavigator 2.0 writes (`znode-export-<date>.gz`).
    const ZOONAV: &str = r#"[{"h":{"acl":[{"id":"anyone","scheme":"world","permissions":["read","admin","delete","write","create"]}],"path":"/import-test","data":"dGVzdA=="},"t":[{"h":{"acl":[{"id":"anyone","scheme":"world","permissions":["read"]}],"path":"/import-test/child","data":""},"t":[]}]}]"#;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn zoonavigator_export_gzip_and_plain() {
        for body in [gz(ZOONAV.as_bytes()), ZOONAV.as_bytes().to_vec()] {
            let roots = parse_import(&body, 1 << 20).unwrap();
            assert_eq!(roots.len(), 1);
            assert_eq!(roots[0].name, "import-test");
            assert_eq!(roots[0].data.as_deref(), Some("dGVzdA=="));
            assert_eq!(roots[0].acl[0].perms, codec::PermsIn::Letters("radwc".into()));
            assert_eq!(roots[0].children[0].name, "child");
            assert_eq!(roots[0].children[0].acl[0].perms.bits().unwrap(), crate::proto::types::perms::READ);
        }
    }

    #[test]
    fn bad_gzip_and_bombs_are_client_errors() {
        let mut broken = gz(ZOONAV.as_bytes());
        broken.truncate(broken.len() / 2);
        assert!(matches!(parse_import(&broken, 1 << 20), Err(ApiError::BadRequest(_))));
        let big = gz(&vec![b' '; 100_000]);
        assert!(matches!(parse_import(&big, 1000), Err(ApiError::TooLarge(_))));
        let bad_perm = ZOONAV.replace("\"admin\"", "\"sudo\"");
        assert!(matches!(parse_import(bad_perm.as_bytes(), 1 << 20), Err(ApiError::BadRequest(_))));
    }
}
