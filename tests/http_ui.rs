//! Server-rendered pages: deep links, NoAuth shown as such, login form with CSRF, ops pages.

mod http_support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_support::{app, digest};
use roost::http::HttpOptions;
use roost::proto::types::{perms, Acl, CreateMode};
use roost::tree::txn::TxnOp;
use tower::ServiceExt;

async fn fetch(
    app: &Router,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<String>,
) -> (StatusCode, String, Option<String>, Option<String>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let body = match form {
        Some(f) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            Body::from(f)
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let set_cookie =
        resp.headers().get("set-cookie").map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned(), set_cookie, location)
}

/// Creates `/s` holding "classified", readable by alice (password `secret`) only.
fn create_classified(b: &http_support::TestBackend) {
    let acl = vec![Acl { perms: perms::ALL, id: digest("alice:secret") }];
    b.apply_as_super(TxnOp::Create {
        path: "/s".into(),
        data: Some(b"classified".to_vec()),
        acl,
        mode: CreateMode::Persistent,
        ttl_ms: None,
    })
    .unwrap();
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf-token\" content=\"").unwrap() + "name=\"csrf-token\" content=\"".len();
    html[start..start + 32].to_owned()
}

#[tokio::test]
async fn deep_link_renders_node_with_data_stat_children_and_acl() {
    let (b, app) = app(HttpOptions::default());
    b.put("/gunwu", "");
    b.put("/gunwu/test1", "<b>hello</b>");
    b.put("/gunwu/test1/kid", "");
    let (status, html, cookie, _) = fetch(&app, "GET", "/ui/gunwu/test1", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(cookie.unwrap().starts_with("roost_csrf="), "an anonymous visitor's CSRF token, no server-side session");
    assert!(
        html.contains("&#60;b&#62;hello&#60;/b&#62;") || html.contains("&lt;b&gt;hello"),
        "data is escaped: {html}"
    );
    assert!(html.contains("data-testid=\"stat-ephemeralOwner\""));
    assert_eq!(html.matches("data-stat=").count(), 11, "all 11 stat fields");
    assert!(html.contains("href=\"/ui/gunwu/test1/kid\""));
    assert!(html.contains("data-testid=\"acl-row\""));
    let (status, _, _, location) = fetch(&app, "GET", "/", None, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/ui/"));
    let (status, html, _, _) = fetch(&app, "GET", "/ui/nope", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("data-error=\"NoNode\""));
}

#[tokio::test]
async fn no_auth_is_shown_and_login_form_grants_access() {
    let (b, app) = app(HttpOptions::default());
    create_classified(&b);
    let (status, html, cookie, _) = fetch(&app, "GET", "/ui/s", None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("data-error=\"NoAuth\""));
    assert!(!html.contains("classified"));
    let cookie = cookie.unwrap();
    let csrf = csrf_of(&html);
    // Wrong CSRF token: refused.
    let (status, _, _, _) =
        fetch(&app, "POST", "/ui/login", Some(&cookie), Some("user=alice&password=secret&_csrf=bad".into())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let form = format!("user=alice&password=secret&_csrf={csrf}&next=%2Fui%2Fs");
    let (status, _, new_cookie, location) = fetch(&app, "POST", "/ui/login", Some(&cookie), Some(form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/ui/s"));
    // The login gets a new session id; the one held before the login (which an attacker
    // could have planted) gains nothing.
    let new_cookie = new_cookie.expect("a new session cookie at login");
    assert_ne!(new_cookie, cookie);
    let (status, html, _, _) = fetch(&app, "GET", "/ui/s", Some(&new_cookie), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("classified"));
    assert!(html.contains("data-testid=\"whoami\">alice<"));
    let (status, html, _, _) = fetch(&app, "GET", "/ui/s", Some(&cookie), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the pre-login session id reads the victim's node");
    assert!(!html.contains("classified"));
}

#[tokio::test]
async fn login_redirects_stay_on_this_server() {
    let (_b, app) = app(HttpOptions::default());
    for (next, expected) in [
        ("%2Fui%2Fs", "/ui/s"),
        ("%2F%5Cevil.example%2Fx", "/ui/"),
        ("%2F%2Fevil.example", "/ui/"),
        ("https%3A%2F%2Fevil.example", "/ui/"),
        ("%2Fui%2F%0D%0ASet-Cookie%3A%20x%3D1", "/ui/"),
    ] {
        let (_, html, cookie, _) = fetch(&app, "GET", "/ui/login", None, None).await;
        let (cookie, csrf) = (cookie.expect("session"), csrf_of(&html));
        let form = format!("user=alice&password=secret&_csrf={csrf}&next={next}");
        let (status, _, _, location) = fetch(&app, "POST", "/ui/login", Some(&cookie), Some(form)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "next={next}");
        assert_eq!(location.as_deref(), Some(expected), "next={next}");
    }
}

#[tokio::test]
async fn anonymous_page_views_do_not_log_anyone_out() {
    let (b, app) = app(HttpOptions::default());
    create_classified(&b);
    let (_, html, cookie, _) = fetch(&app, "GET", "/ui/login", None, None).await;
    let form = format!("user=alice&password=secret&_csrf={}", csrf_of(&html));
    let (_, _, alice, _) = fetch(&app, "POST", "/ui/login", Some(&cookie.expect("session")), Some(form)).await;
    let alice = alice.expect("logged in");
    // A flood of cookie-less requests, each of which gets a fresh anonymous session.
    for _ in 0..300 {
        fetch(&app, "GET", "/ui/login", None, None).await;
    }
    let (status, html, _, _) = fetch(&app, "GET", "/ui/s", Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "the flood evicted a logged-in session");
    assert!(html.contains("classified"));
}

#[tokio::test]
async fn binary_data_is_shown_as_hex() {
    let (b, app) = app(HttpOptions::default());
    b.apply_as_super(TxnOp::Create {
        path: "/bin".into(),
        data: Some(vec![0x1f, 0x8b, 0xff]),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: None,
    })
    .unwrap();
    let (_, html, _, _) = fetch(&app, "GET", "/ui/bin", None, None).await;
    assert!(html.contains(">1f8bff</textarea>"), "{html}");
    assert!(html.contains("data-testid=\"binary-badge\""));
    assert!(html.contains("data-testid=\"gzip-badge\""));
}

#[tokio::test]
async fn cluster_sessions_and_search_pages() {
    let (b, app) = app(HttpOptions::default());
    b.put("/findme", "");
    b.sessions.lock().push(roost::http::SessionInfo {
        id: 0x42,
        timeout_ms: 10000,
        client: None,
        ephemerals: vec!["/findme".into()],
    });
    let (status, html, _, _) = fetch(&app, "GET", "/ui/cluster", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("★ leader"));
    assert!(html.contains("zk_znode_count"));
    let (_, html, _, _) = fetch(&app, "GET", "/ui/sessions", None, None).await;
    assert!(html.contains("id=\"s-0x42\""));
    assert!(html.contains("href=\"/ui/findme\""));
    let (_, html, _, _) = fetch(&app, "GET", "/ui/search?q=find", None, None).await;
    assert!(html.contains("href=\"/ui/findme\""));
}

#[tokio::test]
async fn read_only_mode_hides_edit_controls() {
    let (b, app) = app(HttpOptions { read_only: true, ..HttpOptions::default() });
    b.put("/a", "x");
    let (_, html, _, _) = fetch(&app, "GET", "/ui/a", None, None).await;
    assert!(!html.contains("data-testid=\"save-btn\""));
    assert!(!html.contains("data-testid=\"delete-btn\""));
    assert!(html.contains("read-only"));
}

#[tokio::test]
async fn static_assets_are_embedded() {
    let (_, app) = app(HttpOptions::default());
    let (status, js, _, _) = fetch(&app, "GET", "/static/js/main.js", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(js.contains("/api/v1/watch"));
    assert_eq!(fetch(&app, "GET", "/static/nope.js", None, None).await.0, StatusCode::NOT_FOUND);
}
