//! REST API tests: the router over the in-memory test backend, called in-process.

mod http_support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_support::{app, call, digest, read_resp, Resp};
use roost::http::HttpOptions;
use roost::proto::types::{perms, Acl, CreateMode};
use roost::tree::txn::TxnOp;
use serde_json::{json, Value};
use tower::ServiceExt;

async fn get(app: &Router, uri: &str) -> Resp {
    call(app, Method::GET, uri, None, &[]).await
}

#[tokio::test]
async fn get_returns_data_stat_and_etag() {
    let (b, app) = app(HttpOptions::default());
    b.put("/app", "hello");
    let r = get(&app, "/api/v1/znodes/app").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["data"], "hello");
    assert_eq!(r.body["encoding"], "utf8");
    assert_eq!(r.body["stat"]["version"], 0);
    assert_eq!(r.body["stat"]["dataLength"], 5);
    assert_eq!(r.body["stat"]["ephemeralOwner"], "0x0");
    for field in ["czxid", "mzxid", "pzxid", "ctime", "mtime", "cversion", "aversion", "numChildren"] {
        assert!(r.body["stat"].get(field).is_some(), "missing {field}");
    }
    assert_eq!(r.headers["etag"], "\"0\"");
    let root = get(&app, "/api/v1/znodes/").await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.body["path"], "/");
}

#[tokio::test]
async fn binary_data_comes_back_as_base64_and_hex_on_request() {
    let (b, app) = app(HttpOptions::default());
    b.apply_as_super(TxnOp::Create {
        path: "/bin".into(),
        data: Some(vec![0xff, 0x00, 0x10]),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: None,
    })
    .unwrap();
    let r = get(&app, "/api/v1/znodes/bin").await;
    assert_eq!(r.body["encoding"], "base64");
    assert_eq!(r.body["data"], "/wAQ");
    let r = get(&app, "/api/v1/znodes/bin?encoding=hex").await;
    assert_eq!(r.body["data"], "ff0010");
}

#[tokio::test]
async fn missing_node_is_404_with_json_error() {
    let (_, app) = app(HttpOptions::default());
    let r = get(&app, "/api/v1/znodes/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"], "NoNode");
    assert_eq!(r.body["code"], -101);
    assert_eq!(r.body["path"], "/nope");
}

#[tokio::test]
async fn bad_paths_and_bodies_are_400_not_500() {
    let (b, app) = app(HttpOptions::default());
    b.put("/a", "");
    assert_eq!(get(&app, "/api/v1/znodes/a/../b").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(get(&app, "/api/v1/znodes/a?limit=x").await.status, StatusCode::BAD_REQUEST);
    let r = call(&app, Method::PUT, "/api/v1/znodes/a", None, &[("content-type", "application/json")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(&app, Method::PUT, "/api/v1/znodes/a", Some(json!({"data": "zz", "encoding": "base64x"})), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "BadRequest");
    let r = call(&app, Method::POST, "/api/v1/znodes/e", Some(json!({"mode": "ephemeral_ttl"})), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = get(&app, "/api/v1/znodes/a?children=true&filter=(&regex=true").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn create_set_and_version_conflicts() {
    let (_, app) = app(HttpOptions::default());
    let r = call(&app, Method::POST, "/api/v1/znodes/cfg", Some(json!({"data": "v1"})), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["path"], "/cfg");
    assert_eq!(r.headers["location"], "/api/v1/znodes/cfg");
    let again = call(&app, Method::POST, "/api/v1/znodes/cfg", Some(json!({})), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["error"], "NodeExists");

    let r = call(&app, Method::PUT, "/api/v1/znodes/cfg", Some(json!({"data": "v2"})), &[("if-match", "\"0\"")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["stat"]["version"], 1);
    // A stale version never overwrites.
    let r = call(&app, Method::PUT, "/api/v1/znodes/cfg", Some(json!({"data": "v3"})), &[("if-match", "\"0\"")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"], "BadVersion");
    let r = call(&app, Method::PUT, "/api/v1/znodes/cfg?version=0", Some(json!({"data": "v3"})), &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(get(&app, "/api/v1/znodes/cfg").await.body["data"], "v2");
    // Base64 input.
    let r = call(
        &app,
        Method::PUT,
        "/api/v1/znodes/cfg?version=1",
        Some(json!({"data": "AAE=", "encoding": "base64"})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(get(&app, "/api/v1/znodes/cfg?encoding=hex").await.body["data"], "0001");
    // Raw body.
    let r = call(&app, Method::PUT, "/api/v1/znodes/cfg", None, &[("content-type", "text/plain")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(get(&app, "/api/v1/znodes/cfg").await.body["stat"]["dataLength"], 0);
}

#[tokio::test]
async fn sequential_ttl_and_create_parents() {
    let (_, app) = app(HttpOptions::default());
    call(&app, Method::POST, "/api/v1/znodes/q", None, &[]).await;
    let r =
        call(&app, Method::POST, "/api/v1/znodes/q/job-", Some(json!({"mode": "persistent_sequential"})), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["path"], "/q/job-0000000000");
    let r = call(&app, Method::POST, "/api/v1/znodes/q/t", Some(json!({"mode": "ttl"})), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "TTL needs a ttl");
    let r = call(&app, Method::POST, "/api/v1/znodes/x/y/z", Some(json!({"data": "deep"})), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&app, Method::POST, "/api/v1/znodes/x/y/z", Some(json!({"data": "deep", "createParents": true})), &[])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(get(&app, "/api/v1/znodes/x/y/z").await.body["data"], "deep");
}

#[tokio::test]
async fn too_large_data_is_413() {
    let (b, app) = app(HttpOptions { max_data_bytes: 10, ..HttpOptions::default() });
    b.put("/a", "");
    let r = call(&app, Method::PUT, "/api/v1/znodes/a", Some(json!({"data": "01234567890"})), &[]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, app) = http_support::app(HttpOptions { max_body_bytes: 100, ..HttpOptions::default() });
    let big = "x".repeat(1000);
    let r = call(&app, Method::POST, "/api/v1/znodes/a", Some(json!({ "data": big })), &[]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn delete_plain_versioned_and_recursive() {
    let (b, app) = app(HttpOptions::default());
    b.put("/t", "");
    b.put("/t/a", "");
    b.put("/t/a/b", "");
    b.put("/t/c", "");
    let r = call(&app, Method::DELETE, "/api/v1/znodes/t", None, &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"], "NotEmpty");
    let r = call(&app, Method::DELETE, "/api/v1/znodes/t/c?version=3", None, &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"], "BadVersion");
    let r = call(&app, Method::DELETE, "/api/v1/znodes/t?recursive=true", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["deleted"], 4);
    assert_eq!(get(&app, "/api/v1/znodes/t").await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&app, Method::DELETE, "/api/v1/znodes/t", None, &[]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn children_are_paged_filtered_and_counted() {
    let (b, app) = app(HttpOptions::default());
    b.put("/big", "");
    b.bulk_children("/big", 100_000);
    b.put("/big/child-000007/sub", "");
    let started = std::time::Instant::now();
    let r = get(&app, "/api/v1/znodes/big?children=true&offset=5&limit=3").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(r.status, StatusCode::OK);
    let ch = &r.body["children"];
    assert_eq!(ch["total"], 100_000);
    let names: Vec<&str> = ch["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["child-000005", "child-000006", "child-000007"]);
    assert_eq!(ch["items"][2]["stat"]["numChildren"], 1);
    assert_eq!(ch["items"][2]["path"], "/big/child-000007");
    let r = get(&app, "/api/v1/znodes/big?children=true&filter=99999&limit=10").await;
    assert_eq!(r.body["children"]["total"], 1);
    let r = get(&app, "/api/v1/znodes/big?children=true&filter=%5Echild-00000%5B12%5D%24&regex=true").await;
    assert_eq!(r.body["children"]["total"], 2);
    let r = get(&app, "/api/v1/znodes/big?children=true&order=desc&limit=1").await;
    assert_eq!(r.body["children"]["items"][0]["name"], "child-099999");
    // A page deep into the list: only the names up to its end are sorted, the page is the same.
    let r = get(&app, "/api/v1/znodes/big?children=true&order=desc&offset=99998&limit=5").await;
    let names: Vec<&str> =
        r.body["children"]["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["child-000001", "child-000000"]);
    let r = get(&app, "/api/v1/znodes/big?children=true&limit=5000").await;
    assert_eq!(r.body["children"]["items"].as_array().unwrap().len(), 1000, "pages are capped");
}

fn secret_acl() -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: digest("alice:secret") }]
}

/// Creates `path` with `data` that only alice (password `secret`) may use.
fn create_alices(b: &http_support::TestBackend, path: &str, data: Option<&[u8]>) {
    b.apply_as_super(TxnOp::Create {
        path: path.into(),
        data: data.map(<[u8]>::to_vec),
        acl: secret_acl(),
        mode: CreateMode::Persistent,
        ttl_ms: None,
    })
    .unwrap();
}

#[tokio::test]
async fn acls_are_obeyed_with_digest_identities() {
    let (b, app) = app(HttpOptions::default());
    create_alices(&b, "/private", Some(b"s3cret"));
    let r = get(&app, "/api/v1/znodes/private").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "NoAuth");
    let r = call(&app, Method::GET, "/api/v1/znodes/private", None, &[("zk-auth", "digest alice:wrong")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r =
        call(&app, Method::GET, "/api/v1/znodes/private?acl=true", None, &[("zk-auth", "digest alice:secret")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["data"], "s3cret");
    assert_eq!(r.body["acl"][0]["scheme"], "digest");
    assert_eq!(r.body["acl"][0]["perms"], "cdrwa");
    let r = call(&app, Method::PUT, "/api/v1/znodes/private", Some(json!({"data": "x"})), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Browser flow: log in once, the cookie carries the identity, writes need the CSRF token.
    let login = call(&app, Method::POST, "/api/v1/auth", Some(json!({"digest": "alice:secret"})), &[]).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let cookie = login.headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let csrf = login.body["csrf"].as_str().unwrap().to_owned();
    assert!(login.body["identities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i.as_str().unwrap().starts_with("digest:alice:")));
    let r = call(&app, Method::GET, "/api/v1/znodes/private", None, &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&app, Method::PUT, "/api/v1/znodes/private", Some(json!({"data": "y"})), &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    let r = call(
        &app,
        Method::PUT,
        "/api/v1/znodes/private",
        Some(json!({"data": "y"})),
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Logging out drops the identity.
    call(&app, Method::DELETE, "/api/v1/auth", None, &[("cookie", &cookie), ("x-csrf-token", &csrf)]).await;
    let r = call(&app, Method::GET, "/api/v1/znodes/private", None, &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn set_acl_with_version() {
    let (b, app) = app(HttpOptions::default());
    b.put("/n", "");
    let body = json!({"acl": [{"scheme": "world", "id": "anyone", "perms": "ra"}], "version": 0});
    let r = call(&app, Method::PUT, "/api/v1/znodes/n?acl=true", Some(body.clone()), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["stat"]["aversion"], 1);
    let r = call(&app, Method::PUT, "/api/v1/znodes/n?acl=true", Some(body), &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "stale aversion");
    let r = call(&app, Method::PUT, "/api/v1/znodes/n", Some(json!({"data": "x"})), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "read-only ACL now");
    let r = call(&app, Method::PUT, "/api/v1/znodes/n?acl=true", Some(json!({"acl": []})), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn recursive_acl_sets_the_whole_subtree_atomically() {
    let (b, app) = app(HttpOptions::default());
    for p in ["/r", "/r/a", "/r/a/b", "/r/c"] {
        b.put(p, "");
    }
    let body = |v: i32| json!({"acl": [{"scheme": "world", "id": "anyone", "perms": "ra"}], "version": v});
    let r = call(&app, Method::PUT, "/api/v1/znodes/r?acl=true&recursive=true", Some(body(3)), &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "root version checked: {}", r.text);
    let r = get(&app, "/api/v1/znodes/r/a/b?acl=true").await;
    assert_eq!(r.body["acl"][0]["perms"], "cdrwa", "nothing changed after the failed multi");
    let r = call(&app, Method::PUT, "/api/v1/znodes/r?acl=true&recursive=true", Some(body(0)), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["stat"]["aversion"], 1, "the root's stat");
    for p in ["r", "r/a", "r/a/b", "r/c"] {
        let r = get(&app, &format!("/api/v1/znodes/{p}?acl=true")).await;
        assert_eq!(r.body["acl"][0]["perms"], "ra", "{p}");
    }
}

#[tokio::test]
async fn listings_hide_the_stat_of_unreadable_children() {
    let (b, app) = app(HttpOptions::default());
    b.put("/p", "");
    b.put("/p/open", "x");
    b.apply_as_super(TxnOp::Create {
        path: "/p/closed".into(),
        data: Some(b"s3cret".to_vec()),
        acl: secret_acl(),
        mode: CreateMode::Persistent,
        ttl_ms: None,
    })
    .unwrap();
    let r = get(&app, "/api/v1/znodes/p?children=true").await;
    let items = r.body["children"]["items"].as_array().unwrap();
    assert_eq!(items[0]["name"], "closed");
    assert_eq!(items[0]["stat"], Value::Null, "exists needs READ: no stat leaks");
    assert_eq!(items[1]["stat"]["dataLength"], 1);
    let r =
        call(&app, Method::GET, "/api/v1/znodes/p?children=true", None, &[("zk-auth", "digest alice:secret")]).await;
    assert_eq!(r.body["children"]["items"][0]["stat"]["dataLength"], 6);
}

#[tokio::test]
async fn multi_is_atomic_and_names_the_failing_op() {
    let (b, app) = app(HttpOptions::default());
    b.put("/m", "");
    let ops = json!({"ops": [
        {"op": "create", "path": "/m/a", "data": "1"},
        {"op": "setData", "path": "/m", "data": "x", "version": 0},
        {"op": "check", "path": "/m", "version": 1}
    ]});
    let r = call(&app, Method::POST, "/api/v1/multi", Some(ops), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["results"][0]["path"], "/m/a");
    let ops = json!({"ops": [
        {"op": "create", "path": "/m/b"},
        {"op": "delete", "path": "/m/a", "version": 7}
    ]});
    let r = call(&app, Method::POST, "/api/v1/multi", Some(ops), &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"], "BadVersion");
    assert_eq!(r.body["index"], 1);
    assert_eq!(r.body["path"], "/m/a");
    assert_eq!(get(&app, "/api/v1/znodes/m/b").await.status, StatusCode::NOT_FOUND, "nothing applied");
    let r = call(&app, Method::POST, "/api/v1/multi", Some(json!({"ops": [{"op": "bogus"}]})), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn copy_move_export_import() {
    let (b, app) = app(HttpOptions::default());
    b.put("/src", "root");
    b.put("/src/a", "A");
    b.put("/src/a/b", "B");
    let r = call(&app, Method::POST, "/api/v1/copy", Some(json!({"source": "/src", "destination": "/dup"})), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(get(&app, "/api/v1/znodes/dup/a/b").await.body["data"], "B");
    let r =
        call(&app, Method::POST, "/api/v1/move", Some(json!({"source": "/dup", "destination": "/moved"})), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(get(&app, "/api/v1/znodes/dup").await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/api/v1/znodes/moved/a").await.body["data"], "A");
    let r =
        call(&app, Method::POST, "/api/v1/move", Some(json!({"source": "/src", "destination": "/src/in"})), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let export = get(&app, "/api/v1/export?path=/src").await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.body["nodes"][0]["name"], "src");
    assert_eq!(export.body["nodes"][0]["children"][0]["data"], "A");
    b.put("/restore", "");
    let r = call(&app, Method::POST, "/api/v1/import?path=/restore", Some(export.body.clone()), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["created"], 3);
    assert_eq!(get(&app, "/api/v1/znodes/restore/src/a/b").await.body["data"], "B");
    // Importing again conflicts and changes nothing.
    let r = call(&app, Method::POST, "/api/v1/import?path=/restore", Some(export.body), &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // ZooNavigator's format (uncompressed).
    let zn = json!([{"h": {"path": "/zn", "data": "aGk=", "acl": []}, "t": [{"h": {"path": "/zn/c", "data": null}, "t": []}]}]);
    let r = call(&app, Method::POST, "/api/v1/import?path=/restore", Some(zn), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(get(&app, "/api/v1/znodes/restore/zn").await.body["data"], "hi");
}

async fn post_raw(app: &Router, uri: &str, body: Vec<u8>, content_type: &str) -> Resp {
    let req = Request::builder().method(Method::POST).uri(uri).header("content-type", content_type);
    read_resp(app.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap()).await
}

#[tokio::test]
async fn zoonavigator_gzip_export_imports_with_its_acls() {
    use std::io::Write;
    let (b, app) = app(HttpOptions::default());
    b.put("/restore", "");
    // Exactly what ZooNavigator's Export saves: gzip(JSON array of Cofree trees).
    let doc = json!([{"h": {"acl": [{"id": "anyone", "scheme": "world", "permissions": ["read", "admin", "delete", "write", "create"]}],
                            "path": "/import-test", "data": "dGVzdA=="},
                      "t": [{"h": {"acl": [{"id": "anyone", "scheme": "world", "permissions": ["read"]}],
                                   "path": "/import-test/ro", "data": ""}, "t": []}]}]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(doc.to_string().as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let r = post_raw(&app, "/api/v1/import?path=/restore", gz.clone(), "application/gzip").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["created"], 2);
    assert_eq!(get(&app, "/api/v1/znodes/restore/import-test").await.body["data"], "test");
    let acl = get(&app, "/api/v1/znodes/restore/import-test/ro?acl=true").await.body["acl"].clone();
    assert_eq!(acl, json!([{"scheme": "world", "id": "anyone", "perms": "r"}]));
    // A truncated file is a client error, never a 500.
    let r = post_raw(&app, "/api/v1/import?path=/restore", gz[..gz.len() / 2].to_vec(), "application/gzip").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

#[tokio::test]
async fn yaml_reformat_works_on_a_read_only_port_and_refuses_with_reasons() {
    let (_b, app) = app(HttpOptions { read_only: true, ..HttpOptions::default() });
    let r = call(&app, Method::POST, "/api/v1/reformat", Some(json!({"format": "yaml", "text": "{a: [1, yes]}"})), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["text"], "a:\n  - 1\n  - yes\n");
    let r = call(&app, Method::POST, "/api/v1/reformat", Some(json!({"format": "yaml", "text": "a: 1 # why\n"})), &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["message"].as_str().unwrap().contains("comments would be lost"), "{}", r.text);
    // Writes stay refused on that port.
    let r = call(&app, Method::POST, "/api/v1/multi", Some(json!({"ops": []})), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn search_finds_paths_and_data() {
    let (b, app) = app(HttpOptions::default());
    b.put("/svc", "");
    b.put("/svc/kafka", "broker=1");
    let r = get(&app, "/api/v1/search?q=kafka").await;
    assert_eq!(r.body["paths"], json!(["/svc/kafka"]));
    let r = get(&app, "/api/v1/search?q=broker").await;
    assert_eq!(r.body["paths"], json!([]));
    let r = get(&app, "/api/v1/search?q=broker&data=true").await;
    assert_eq!(r.body["paths"], json!(["/svc/kafka"]));
    assert_eq!(get(&app, "/api/v1/search?q=(&regex=true").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn read_only_mode_refuses_writes() {
    let (b, app) = app(HttpOptions { read_only: true, ..HttpOptions::default() });
    b.put("/a", "");
    assert_eq!(get(&app, "/api/v1/znodes/a").await.status, StatusCode::OK);
    let r = call(&app, Method::PUT, "/api/v1/znodes/a", Some(json!({"data": "x"})), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&app, Method::DELETE, "/api/v1/znodes/a", None, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn login_token_protects_the_port() {
    let (b, app) = app(HttpOptions { login_token: Some("t0k".into()), ..HttpOptions::default() });
    b.put("/a", "");
    assert_eq!(get(&app, "/api/v1/znodes/a").await.status, StatusCode::UNAUTHORIZED);
    let r = call(&app, Method::GET, "/api/v1/znodes/a", None, &[("authorization", "Bearer t0k")]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&app, Method::GET, "/ui/", None, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let bad = call(&app, Method::POST, "/api/v1/auth", Some(json!({"token": "nope"})), &[]).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let login = call(&app, Method::POST, "/api/v1/auth", Some(json!({"token": "t0k"})), &[]).await;
    let cookie = login.headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_eq!(call(&app, Method::GET, "/api/v1/znodes/a", None, &[("cookie", &cookie)]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn cross_origin_writes_are_refused() {
    let (b, app) = app(HttpOptions::default());
    b.put("/a", "");
    let r = call(
        &app,
        Method::PUT,
        "/api/v1/znodes/a",
        Some(json!({"data": "x"})),
        &[("origin", "http://evil.example"), ("host", "127.0.0.1:8080")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn cluster_sessions_commands_metrics_openapi() {
    let (b, app) = app(HttpOptions::default());
    b.sessions.lock().push(roost::http::SessionInfo {
        id: 0x100,
        timeout_ms: 30000,
        client: None,
        ephemerals: vec!["/e".into()],
    });
    let r = get(&app, "/api/v1/cluster").await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["leader_id"], 1);
    let r = get(&app, "/api/v1/sessions").await;
    assert_eq!(r.body["sessions"][0]["id"], "0x100");
    let r = get(&app, "/commands/mntr").await;
    assert_eq!(r.body["command"], "monitor");
    assert_eq!(r.body["server_state"], "leader");
    assert_eq!(r.body["error"], Value::Null);
    assert_eq!(get(&app, "/commands/ruok").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/commands/srvr").await.body["command"], "server_stats");
    assert_eq!(get(&app, "/commands/nope").await.status, StatusCode::NOT_FOUND);
    b.watches.lock().push(("/w".into(), vec![0x100, 0x200]));
    let r = get(&app, "/commands/wchp").await;
    assert_eq!(r.body["command"], "watches_by_path");
    assert_eq!(r.body["path_to_session_ids"]["/w"], json!(["0x100", "0x200"]));
    let page = get(&app, "/ui/cluster").await;
    assert!(page.text.contains("Watches by path") && page.text.contains("0x200"), "{}", page.text);
    let m = get(&app, "/metrics").await;
    assert!(m.text.contains("zk_znode_count 1\n"), "{}", m.text);
    let spec = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(spec.status, StatusCode::OK);
    assert!(spec.body["openapi"].as_str().unwrap().starts_with("3."));
    assert!(spec.body["paths"].get("/api/v1/znodes/{path}").is_some());
}

#[tokio::test]
async fn base_path_prefixes_everything() {
    let (b, app) = app(HttpOptions { base_path: "/zk/".into(), ..HttpOptions::default() });
    b.put("/a", "x");
    assert_eq!(get(&app, "/zk/api/v1/znodes/a").await.body["data"], "x");
    assert_eq!(get(&app, "/api/v1/znodes/a").await.status, StatusCode::NOT_FOUND);
    let r = get(&app, "/").await;
    assert_eq!(r.headers["location"], "/zk/ui/");
}

#[tokio::test]
async fn zk_auth_header_adds_a_digest_identity() {
    let (_, app) = app(HttpOptions::default());
    let r = call(&app, Method::GET, "/api/v1/auth", None, &[("zk-auth", "digest bob:pw")]).await;
    let ids: Vec<String> = serde_json::from_value(r.body["identities"].clone()).unwrap();
    assert!(ids.contains(&format!("digest:{}", digest("bob:pw").id)));
}

#[tokio::test]
async fn session_listings_hide_ephemerals_under_parents_the_caller_cannot_read() {
    let (b, app) = app(HttpOptions::default());
    create_alices(&b, "/locked", None);
    b.sessions.lock().push(roost::http::SessionInfo {
        id: 0x100,
        timeout_ms: 30000,
        client: None,
        ephemerals: vec!["/locked/secret-lock-holder".into(), "/open-eph".into()],
    });
    let alice = [("zk-auth", "digest alice:secret")];
    for uri in ["/api/v1/sessions", "/commands/sessions", "/ui/sessions", "/ui/cluster"] {
        let anonymous = call(&app, Method::GET, uri, None, &[]).await;
        assert_eq!(anonymous.status, StatusCode::OK, "{uri}");
        assert!(!anonymous.text.contains("secret-lock-holder"), "{uri} shows a name under an unreadable parent");
        assert!(anonymous.text.contains("open-eph"), "{uri} hides a listable ephemeral: {}", anonymous.text);
        let allowed = call(&app, Method::GET, uri, None, &alice).await;
        assert!(allowed.text.contains("secret-lock-holder"), "{uri} hides it from a caller who may list it");
    }
}

#[tokio::test]
async fn a_login_without_credentials_creates_no_session() {
    let (_b, app) = app(HttpOptions::default());
    let r = call(&app, Method::POST, "/api/v1/auth", Some(json!({})), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(!r.headers.contains_key("set-cookie"), "an anonymous caller minted a server-side session");
}

#[tokio::test]
async fn an_api_login_replaces_the_session_id_it_came_with() {
    let (b, app) = app(HttpOptions::default());
    create_alices(&b, "/private", Some(b"s3cret"));
    // The attacker's session id, planted in the victim's browser.
    let mallory = call(&app, Method::POST, "/api/v1/auth", Some(json!({"digest": "mallory:pw"})), &[]).await;
    let planted = mallory.headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let csrf = mallory.body["csrf"].as_str().unwrap().to_owned();
    let victim = call(
        &app,
        Method::POST,
        "/api/v1/auth",
        Some(json!({"digest": "alice:secret"})),
        &[("cookie", &planted), ("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(victim.status, StatusCode::OK, "{}", victim.text);
    let fresh = victim.headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_ne!(fresh, planted);
    let r = call(&app, Method::GET, "/api/v1/znodes/private", None, &[("cookie", &planted)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the planted session reads the victim's node");
    let r = call(&app, Method::GET, "/api/v1/znodes/private", None, &[("cookie", &fresh)]).await;
    assert_eq!(r.status, StatusCode::OK);
}
