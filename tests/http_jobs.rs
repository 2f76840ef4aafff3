//! Subtree jobs (src/http/jobs.rs): delete, copy, move, recursive ACL and export of subtrees
//! over the multi limit, in batches, over the in-memory test backend called in-process.
//! The backend's write gate holds batches back so that tests can act between two batches.

mod http_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_support::{app, call, digest, Resp, TestBackend};
use roost::http::jobs::JobLimits;
use roost::http::{Backend, HttpOptions};
use roost::proto::types::{perms, Acl, CreateMode, Id};
use roost::tree::txn::TxnOp;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Small limits so that a few thousand nodes make many batches.
fn opts(atomic: usize, batch: usize) -> HttpOptions {
    HttpOptions {
        max_subtree_ops: atomic,
        jobs: JobLimits { batch, max_nodes: 100_000, ..JobLimits::default() },
        ..HttpOptions::default()
    }
}

fn create(b: &TestBackend, path: &str, data: &str, acl: Vec<Acl>) {
    b.apply_as_super(TxnOp::Create {
        path: path.into(),
        data: Some(data.as_bytes().to_vec()),
        acl,
        mode: CreateMode::Persistent,
        ttl_ms: None,
    })
    .unwrap();
}

/// `/big` with `groups` children `g0..` of `per` leaves each: 1 + groups * (1 + per) nodes.
fn tree(b: &TestBackend, root: &str, groups: usize, per: usize) -> usize {
    b.put(root, "root");
    for g in 0..groups {
        let gp = format!("{root}/g{g:03}");
        b.put(&gp, "group");
        b.bulk_children(&gp, per);
    }
    1 + groups * (1 + per)
}

fn count_under(b: &TestBackend, root: &str) -> usize {
    let su = [Id::new("super", "")];
    let mut todo = vec![root.to_owned()];
    let mut n = 0;
    while let Some(p) = todo.pop() {
        let Ok((names, _)) = b.children(&p, &su) else { continue };
        n += 1;
        todo.extend(names.iter().map(|c| if p == "/" { format!("/{c}") } else { format!("{p}/{c}") }));
    }
    n
}

async fn job(app: &Router, id: u64, headers: &[(&str, &str)]) -> Value {
    call(app, Method::GET, &format!("/api/v1/jobs/{id}"), None, headers).await.body
}

/// Polls a job until it is no longer running (10 s at most).
async fn finished(app: &Router, id: u64, headers: &[(&str, &str)]) -> Value {
    for _ in 0..1000 {
        let j = job(app, id, headers).await;
        if j["state"] != "running" {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} still running");
}

/// Waits until the job is blocked at the gate with `done` nodes behind it.
async fn parked(b: &TestBackend, app: &Router, id: u64, done: u64, headers: &[(&str, &str)]) {
    for _ in 0..1000 {
        if b.writes_waiting.load(Ordering::SeqCst) == 1 && job(app, id, headers).await["done"] == done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("job {id} never parked at {done}: {}", job(app, id, headers).await);
}

fn gate(b: &TestBackend) -> Arc<tokio::sync::Semaphore> {
    let g = Arc::new(tokio::sync::Semaphore::new(0));
    *b.write_gate.lock() = Some(g.clone());
    g
}

fn started(r: &Resp) -> u64 {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let id = r.body["job"]["id"].as_u64().unwrap();
    assert_eq!(r.headers["location"], format!("/api/v1/jobs/{id}"));
    assert_eq!(r.body["job"]["atomic"], false);
    id
}

#[tokio::test]
async fn a_delete_over_the_limit_is_refused_atomically_and_runs_as_a_job_in_batches() {
    let (b, app) = app(opts(100, 50));
    let n = tree(&b, "/big", 10, 99); // 1001 nodes
    b.put("/small", "");
    b.bulk_children("/small", 20);

    // Today's behaviour stays the default: atomic or refused, saying how to run a job.
    let r = call(&app, Method::DELETE, "/api/v1/znodes/big?recursive=true", None, &[]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body["message"].as_str().unwrap().contains("job=auto"), "{}", r.text);
    assert_eq!(count_under(&b, "/big"), n);

    // Under the limit, job=auto stays one atomic multi (200).
    let r = call(&app, Method::DELETE, "/api/v1/znodes/small?recursive=true&job=auto", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["deleted"], 21);

    let r = call(&app, Method::DELETE, "/api/v1/znodes/big?recursive=true&job=auto", None, &[]).await;
    let id = started(&r);
    assert_eq!(r.body["job"]["kind"], "delete");
    let j = finished(&app, id, &[]).await;
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!(j["done"], n as u64);
    assert_eq!(j["total"], n as u64);
    assert_eq!(j["batches"], (n as u64).div_ceil(50));
    assert!(j["outcome"].as_str().unwrap().contains("1001 nodes"), "{j}");
    assert_eq!(count_under(&b, "/big"), 0);

    let list = call(&app, Method::GET, "/api/v1/jobs", None, &[]).await;
    assert_eq!(list.body["jobs"][0]["id"], id);
    assert_eq!(list.body["limits"]["atomicUpTo"], 100);
}

#[tokio::test]
async fn cancelling_a_delete_stops_between_batches_and_leaves_the_top_of_the_subtree() {
    let (b, app) = app(opts(100, 50));
    let n = tree(&b, "/big", 4, 99); // 401 nodes
    let g = gate(&b);
    let id = started(&call(&app, Method::DELETE, "/api/v1/znodes/big?recursive=true&job=always", None, &[]).await);
    g.add_permits(3);
    parked(&b, &app, id, 150, &[]).await;
    // The cancel is seen when the batch in flight is through.
    let cancel = tokio::spawn({
        let app = app.clone();
        async move { call(&app, Method::DELETE, &format!("/api/v1/jobs/{id}"), None, &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    g.add_permits(100);
    let r = cancel.await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let j = finished(&app, id, &[]).await;
    assert_eq!(j["state"], "cancelled", "{j}");
    assert_eq!(j["done"], 200);
    assert!(j["outcome"].as_str().unwrap().contains("leaves first"), "{j}");
    // Leaves first: the root and the groups not finished are still there.
    assert_eq!(count_under(&b, "/big"), n - 200);
    let su = [Id::new("super", "")];
    assert!(b.get("/big", &su).is_ok());
    assert!(b.get("/big/g003", &su).is_ok());
    assert!(b.get("/big/g000", &su).is_err(), "the first group (deleted leaves first) is gone");
    // A finished job is forgotten by a second DELETE.
    assert_eq!(call(&app, Method::DELETE, &format!("/api/v1/jobs/{id}"), None, &[]).await.status, StatusCode::OK);
    assert_eq!(call(&app, Method::GET, &format!("/api/v1/jobs/{id}"), None, &[]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_batch_is_checked_with_the_starting_callers_identity_as_of_that_batch() {
    let (b, app) = app(opts(100, 50));
    let bob = digest("bob:pw");
    let bob_acl = vec![Acl { perms: perms::ALL, id: bob.clone() }];
    create(&b, "/team", "", bob_acl.clone());
    create(&b, "/team/a", "", bob_acl.clone());
    b.bulk_children("/team/a", 120);
    create(&b, "/team/b", "", bob_acl.clone());
    b.bulk_children("/team/b", 120);
    let as_bob: &[(&str, &str)] = &[("zk-auth", "digest bob:pw")];
    let as_alice: &[(&str, &str)] = &[("zk-auth", "digest alice:pw")];

    // Alice may not even list it: refused before any job starts.
    let r = call(&app, Method::DELETE, "/api/v1/znodes/team?recursive=true&job=always", None, as_alice).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    let g = gate(&b);
    let id = started(&call(&app, Method::DELETE, "/api/v1/znodes/team?recursive=true&job=always", None, as_bob).await);
    g.add_permits(1);
    parked(&b, &app, id, 50, as_bob).await;
    // The job is bob's: alice cannot see or cancel it.
    assert_eq!(
        call(&app, Method::GET, &format!("/api/v1/jobs/{id}"), None, as_alice).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Method::DELETE, &format!("/api/v1/jobs/{id}"), None, as_alice).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(call(&app, Method::GET, "/api/v1/jobs", None, as_alice).await.body["jobs"].as_array().unwrap().is_empty());
    // Meanwhile bob loses DELETE on /team/b: the batches that reach it fail with NoAuth.
    b.apply_as_super(TxnOp::SetAcl {
        path: "/team/b".into(),
        acl: vec![Acl { perms: perms::READ, id: bob.clone() }],
        version: -1,
    })
    .unwrap();
    g.add_permits(1000);
    let j = finished(&app, id, as_bob).await;
    assert_eq!(j["state"], "failed", "{j}");
    assert_eq!(j["error"]["error"], "NoAuth");
    assert!(j["error"]["path"].as_str().unwrap().starts_with("/team/b/"), "{j}");
    // Two batches went through; the third (the rest of /team/a, then /team/b's children)
    // is refused as a whole: a batch is one multi.
    assert_eq!(j["done"], 100);
    assert_eq!(count_under(&b, "/team/a"), 21);
    assert_eq!(count_under(&b, "/team/b"), 121);
}

#[tokio::test]
async fn children_created_during_a_delete_job_are_deleted_too_and_vanished_nodes_are_skipped() {
    let (b, app) = app(opts(100, 50));
    let n = tree(&b, "/big", 3, 99); // 301 nodes
    let g = gate(&b);
    let id = started(&call(&app, Method::DELETE, "/api/v1/znodes/big?recursive=true&job=always", None, &[]).await);
    g.add_permits(1);
    parked(&b, &app, id, 50, &[]).await;
    // The batch in flight ends with /big/g000, listed already: a newcomer there (and one
    // deeper) makes it NotEmpty; the job lists and deletes them, then g000.
    b.put("/big/g000/late", "");
    b.put("/big/g000/late/deeper", "");
    // A node of the batch in flight is deleted by someone else meanwhile.
    b.apply_as_super(TxnOp::Delete { path: "/big/g000/child-000060".into(), version: -1 }).unwrap();
    g.add_permits(1000);
    let j = finished(&app, id, &[]).await;
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!(count_under(&b, "/big"), 0);
    assert_eq!(j["vanished"], 1);
    assert_eq!(j["done"], (n - 1 + 2) as u64);
}

#[tokio::test]
async fn copy_move_and_recursive_acl_jobs() {
    let (b, app) = app(opts(100, 40));
    let n = tree(&b, "/src", 3, 60) as u64; // 184 nodes
    let bob = digest("bob:pw");

    let r = call(
        &app,
        Method::POST,
        "/api/v1/copy?job=auto",
        Some(json!({"source": "/src", "destination": "/a/b/copy", "createParents": true})),
        &[],
    )
    .await;
    let id = started(&r);
    let j = finished(&app, id, &[]).await;
    assert_eq!((j["state"].clone(), j["done"].clone()), (json!("done"), json!(n)), "{j}");
    assert_eq!(count_under(&b, "/a/b/copy"), n as usize);
    let su = [Id::new("super", "")];
    assert_eq!(b.get("/a/b/copy/g001", &su).unwrap().data.as_deref(), Some(&b"group"[..]));

    let r = call(
        &app,
        Method::POST,
        "/api/v1/move?job=always",
        Some(json!({"source": "/a/b/copy", "destination": "/moved"})),
        &[],
    )
    .await;
    let id = started(&r);
    let j = finished(&app, id, &[]).await;
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!((j["done"].clone(), j["total"].clone()), (json!(2 * n), json!(2 * n)));
    assert_eq!(count_under(&b, "/moved"), n as usize);
    assert_eq!(count_under(&b, "/a/b/copy"), 0);

    // A copy onto an existing node fails in its first batch, having created nothing.
    let r = call(
        &app,
        Method::POST,
        "/api/v1/copy?job=always",
        Some(json!({"source": "/src", "destination": "/moved"})),
        &[],
    )
    .await;
    let j = finished(&app, started(&r), &[]).await;
    assert_eq!((j["state"].clone(), j["error"]["error"].clone()), (json!("failed"), json!("NodeExists")), "{j}");
    assert_eq!(j["done"], 0);

    // Recursive ACL: a stale root version is refused before anything changes.
    let acl = json!({"acl": [{"scheme": "digest", "id": bob.id, "perms": "cdrwa"}], "version": 7});
    let r = call(&app, Method::PUT, "/api/v1/znodes/src?acl=true&recursive=true&job=auto", Some(acl), &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let acl = json!({"acl": [{"scheme": "digest", "id": bob.id, "perms": "cdrwa"}], "version": 0});
    let r = call(&app, Method::PUT, "/api/v1/znodes/src?acl=true&recursive=true&job=auto", Some(acl), &[]).await;
    let j = finished(&app, started(&r), &[]).await;
    assert_eq!((j["state"].clone(), j["done"].clone()), (json!("done"), json!(n)), "{j}");
    let (acl, _) = b.get_acl("/src/g002/child-000059", &su).unwrap();
    assert_eq!(acl[0].id, bob);
}

/// A move job of /m (the root and 30 children, batches of 10) to /m2, held at the write gate.
async fn gated_move_of_31_nodes() -> (Arc<TestBackend>, Router, Arc<tokio::sync::Semaphore>, u64) {
    let (b, app) = app(opts(10, 10));
    b.put("/m", "");
    b.bulk_children("/m", 30);
    let g = gate(&b);
    let id = started(
        &call(&app, Method::POST, "/api/v1/move?job=always", Some(json!({"source": "/m", "destination": "/m2"})), &[])
            .await,
    );
    (b, app, g, id)
}

#[tokio::test]
async fn a_move_fails_rather_than_delete_a_node_created_in_its_source_after_the_copy() {
    let (b, app, g, id) = gated_move_of_31_nodes().await;
    // Copy: 4 batches (31 nodes); then the first delete batch.
    g.add_permits(4);
    parked(&b, &app, id, 31, &[]).await;
    b.put("/m/late", "keep me");
    g.add_permits(100);
    let j = finished(&app, id, &[]).await;
    assert_eq!(j["state"], "failed", "{j}");
    assert_eq!((j["error"]["error"].clone(), j["error"]["path"].clone()), (json!("NotEmpty"), json!("/m")));
    assert!(j["outcome"].as_str().unwrap().contains("complete copy"), "{j}");
    let su = [Id::new("super", "")];
    assert_eq!(b.get("/m/late", &su).unwrap().data.as_deref(), Some(&b"keep me"[..]));
    assert_eq!(count_under(&b, "/m2"), 31);
}

#[tokio::test]
async fn a_move_keeps_its_source_when_an_ephemeral_node_appears_in_it_during_the_copy() {
    let (b, app, g, id) = gated_move_of_31_nodes().await;
    g.add_permits(2);
    parked(&b, &app, id, 20, &[]).await;
    // A client's session takes a lock under the source while the copy runs.
    b.put("/m/lock", "");
    b.sessions.lock().push(roost::http::SessionInfo {
        id: 0x77,
        timeout_ms: 30_000,
        client: None,
        ephemerals: vec!["/m/lock".into()],
    });
    g.add_permits(100);
    let j = finished(&app, id, &[]).await;
    assert_eq!(j["state"], "failed", "{j}");
    let message = j["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("not deleted") && message.contains("/m/lock"), "{j}");
    let su = [Id::new("super", "")];
    assert!(b.get("/m/lock", &su).is_ok(), "the lock was deleted from under its owner");
    assert_eq!(count_under(&b, "/m"), 32);
}

#[tokio::test]
async fn running_jobs_are_bounded_globally_and_per_identity_and_finished_ones_are_kept_boundedly() {
    let mut o = opts(10, 10);
    o.jobs.max_running = 2;
    o.jobs.max_running_per_owner = 1;
    o.jobs.keep_finished = 1;
    let (b, app) = app(o);
    for name in ["/x", "/y", "/z"] {
        b.put(name, "");
        b.bulk_children(name, 30);
    }
    let g = gate(&b);
    let anon: &[(&str, &str)] = &[];
    let bob: &[(&str, &str)] = &[("zk-auth", "digest bob:pw")];
    let carol: &[(&str, &str)] = &[("zk-auth", "digest carol:pw")];
    let first = started(&call(&app, Method::DELETE, "/api/v1/znodes/x?recursive=true&job=always", None, anon).await);
    let r = call(&app, Method::DELETE, "/api/v1/znodes/y?recursive=true&job=always", None, anon).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.body["error"], "TooManyJobs");
    let second = started(&call(&app, Method::DELETE, "/api/v1/znodes/y?recursive=true&job=always", None, bob).await);
    let r = call(&app, Method::DELETE, "/api/v1/znodes/z?recursive=true&job=always", None, carol).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    g.add_permits(1000);
    assert_eq!(finished(&app, first, anon).await["state"], "done");
    assert_eq!(finished(&app, second, bob).await["state"], "done");
    let third = started(&call(&app, Method::DELETE, "/api/v1/znodes/z?recursive=true&job=always", None, anon).await);
    assert_eq!(finished(&app, third, anon).await["state"], "done");
    // Only the newest finished job is kept.
    let list = call(&app, Method::GET, "/api/v1/jobs", None, anon).await;
    let ids: Vec<u64> = list.body["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![third]);
}

#[tokio::test]
async fn a_job_over_the_node_limit_fails_before_changing_anything() {
    let mut o = opts(10, 10);
    o.jobs.max_nodes = 50;
    let (b, app) = app(o);
    b.put("/big", "");
    b.bulk_children("/big", 60);
    let j = finished(
        &app,
        started(&call(&app, Method::DELETE, "/api/v1/znodes/big?recursive=true&job=auto", None, &[]).await),
        &[],
    )
    .await;
    assert_eq!((j["state"].clone(), j["error"]["error"].clone()), (json!("failed"), json!("TooLarge")), "{j}");
    assert_eq!(count_under(&b, "/big"), 61);
}

#[tokio::test]
async fn export_streams_a_large_subtree_as_a_job_and_leaves_ephemerals_out() {
    let (b, app) = app(opts(100, 50));
    let n = tree(&b, "/big", 5, 199); // 1001 nodes
    b.apply_as_super(TxnOp::Create {
        path: "/big/g001/session-lock".into(),
        data: Some(b"owner".to_vec()),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Ephemeral,
        ttl_ms: None,
    })
    .unwrap();
    let r = call(&app, Method::GET, "/api/v1/export?path=/big", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let id: u64 = r.headers["x-roost-job"].to_str().unwrap().parse().unwrap();
    let doc = &r.body;
    assert_eq!(doc["format"], "roost-export-1");
    assert_eq!(doc["summary"]["nodes"], n as u64);
    assert_eq!(doc["summary"]["skippedEphemeral"], 1);
    assert_eq!(doc["summary"]["skippedEphemeralPaths"][0], "/big/g001/session-lock");
    let root = &doc["nodes"][0];
    assert_eq!(root["name"], "big");
    assert_eq!(root["children"].as_array().unwrap().len(), 5);
    let g1 = &root["children"][1];
    assert_eq!((g1["name"].clone(), g1["data"].clone()), (json!("g001"), json!("group")));
    assert_eq!(g1["children"].as_array().unwrap().len(), 199, "the ephemeral is not in the export");
    let j = finished(&app, id, &[]).await;
    let n1 = n as u64 + 1;
    assert_eq!((j["state"].clone(), j["kind"].clone(), j["done"].clone()), (json!("done"), json!("export"), json!(n1)));
    assert_eq!((j["total"].clone(), j["skippedEphemeral"].clone()), (json!(n1), json!(1)));
    assert!(j["outcome"].as_str().unwrap().contains("1 ephemeral"), "{j}");

    // A small export streams too, with no job; `/` exports and imports back (without /zookeeper).
    let r = call(&app, Method::GET, "/api/v1/export?path=/big/g004/child-000001", None, &[]).await;
    assert!(r.headers.get("x-roost-job").is_none());
    assert_eq!(r.body["nodes"][0]["name"], "child-000001");
    b.put("/tiny", "t");
    b.put("/tiny/k", "k");
    let r = call(&app, Method::GET, "/api/v1/export?path=/&job=never", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["nodes"][0]["name"], "");
    assert!(r.headers["content-disposition"].to_str().unwrap().contains("znodes_root.json"));
    let small: Value = {
        let mut d = r.body.clone();
        let kids = d["nodes"][0]["children"].as_array_mut().unwrap();
        kids.retain(|c| c["name"] == "tiny");
        d
    };
    b.put("/restored", "");
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/import?path=/restored")
        .header("content-type", "application/json")
        .body(Body::from(small.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let su = [Id::new("super", "")];
    assert_eq!(b.get("/restored/tiny/k", &su).unwrap().data.as_deref(), Some(&b"k"[..]));

    // Errors found before the stream starts are JSON errors.
    let r = call(&app, Method::GET, "/api/v1/export?path=/nope", None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_cancelled_export_is_cut_short_not_passed_off_as_complete() {
    let mut o = opts(10, 10);
    o.jobs.max_nodes = 100_000;
    let (b, app) = app(o);
    b.put("/big", "");
    b.bulk_children("/big", 20_000);
    let req = Request::builder().uri("/api/v1/export?path=/big&job=always").body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let id: u64 = resp.headers()["x-roost-job"].to_str().unwrap().parse().unwrap();
    let mut body = resp.into_body().into_data_stream();
    use futures::StreamExt;
    // Read one chunk, then cancel while the rest is pending.
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    let r = call(&app, Method::DELETE, &format!("/api/v1/jobs/{id}"), None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut failed = false;
    while let Some(chunk) = body.next().await {
        if chunk.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "the stream must end in an error, not as a complete document");
    let j = finished(&app, id, &[]).await;
    assert_eq!(j["state"], "cancelled", "{j}");
}

#[tokio::test]
async fn an_export_leaves_out_what_the_caller_may_not_read_and_says_so() {
    let (b, app) = app(opts(100, 50));
    b.put("/mixed", "m");
    b.bulk_children("/mixed", 10);
    let bob_only = vec![Acl { perms: perms::ALL, id: digest("bob:pw") }];
    create(&b, "/mixed/secret", "s", bob_only);
    b.put("/mixed/secret2", "");
    for mode in ["never", "always"] {
        let r = call(&app, Method::GET, &format!("/api/v1/export?path=/mixed&job={mode}"), None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let names: Vec<&str> =
            r.body["nodes"][0]["children"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 11, "{names:?}");
        assert!(!names.contains(&"secret") && names.contains(&"secret2"));
        assert_eq!(r.body["summary"]["skippedUnreadable"], 1);
        assert_eq!(r.body["summary"]["skippedUnreadablePaths"][0], "/mixed/secret");
        if mode == "always" {
            let id: u64 = r.headers["x-roost-job"].to_str().unwrap().parse().unwrap();
            let j = finished(&app, id, &[]).await;
            assert!(j["outcome"].as_str().unwrap().contains("1 nodes you may not read"), "{j}");
        }
    }
    // Bob reads it all.
    let r = call(&app, Method::GET, "/api/v1/export?path=/mixed", None, &[("zk-auth", "digest bob:pw")]).await;
    assert_eq!(r.body["summary"]["skippedUnreadable"], 0);
}
