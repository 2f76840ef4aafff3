"""ACL editing that cannot lock a user out by accident, errors that name their row, readable
Move/Create errors, Move creating parents, in-page confirmations, an invalid filter regex,
and no request for a missing favicon."""

from kazoo.security import make_digest_acl_credential
from playwright.sync_api import expect


def open_node(page, node, path):
    page.goto(node.ui(path))
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")


def _add_row(page, scheme, ident, perms="r"):
    page.get_by_test_id("acl-add").click()
    row = page.get_by_test_id("acl-row").last
    row.locator(".acl-scheme").fill(scheme)
    row.locator(".acl-id").fill(ident)
    for p in "cdrwa":
        (row.locator(f'[data-perm="{p}"]').check if p in perms else row.locator(f'[data-perm="{p}"]').uncheck)()
    return row


def test_plain_digest_password_is_offered_to_be_hashed(page, node, zk, fresh):
    path = fresh + "/n"
    zk.create(path, b"x")
    open_node(page, node, path)
    page.get_by_test_id("tab-acl").click()
    _add_row(page, "digest", "bob:secret", "rw")
    page.get_by_test_id("acl-save").click()
    expect(page.get_by_test_id("confirm-dialog")).to_contain_text("lock bob out")
    page.get_by_test_id("confirm-ok").click()
    expect(page.locator("#toast")).to_contain_text("ACL applied")
    acl, _ = zk.get_acls(path)
    digests = [a.id.id for a in acl if a.id.scheme == "digest"]
    assert digests == [make_digest_acl_credential("bob", "secret")], digests


def test_invalid_acl_names_the_row_and_applies_nothing(page, node, zk, fresh):
    path = fresh + "/n"
    zk.create(path, b"x")
    open_node(page, node, path)
    page.get_by_test_id("tab-acl").click()
    row = _add_row(page, "ip", "300.1.2.3")
    page.get_by_test_id("acl-save").click()
    expect(page.get_by_test_id("acl-problem")).to_contain_text("Row 2 (ip:300.1.2.3)")
    expect(row).to_have_attribute("aria-invalid", "true")
    assert zk.get_acls(path)[1].aversion == 0


def test_move_explains_a_missing_parent_and_can_create_it(page, node, zk, fresh):
    zk.create(fresh + "/src/inner", b"deep", makepath=True)
    open_node(page, node, fresh + "/src")
    page.get_by_test_id("move-btn").click()
    page.get_by_test_id("dest-path").fill(fresh + "/archive/2026/src")
    page.get_by_test_id("dest-submit").click()
    err = page.locator("#dlg-path [data-role=error]")
    expect(err).to_contain_text("create missing parents")
    assert not err.inner_text().startswith("NoNode:")
    page.get_by_test_id("dest-parents").check()
    page.get_by_test_id("dest-submit").click()
    page.wait_for_url("**/archive/2026/src")
    assert zk.get(fresh + "/archive/2026/src/inner")[0] == b"deep"
    assert zk.exists(fresh + "/src") is None


def test_bulk_delete_asks_in_the_page_not_with_confirm(page, node, zk, fresh):
    for n in ("a", "b"):
        zk.create(f"{fresh}/{n}", b"")
    native = []
    page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))
    open_node(page, node, fresh)
    page.get_by_test_id("select-all").check()
    page.get_by_test_id("bulk-delete").click()
    expect(page.get_by_test_id("confirm-dialog")).to_contain_text("Delete 2 node(s)?")
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("child-row")).to_have_count(0)
    assert not native, native
    assert zk.get_children(fresh) == []


def test_invalid_regex_leaves_no_stale_rows(page, node, zk, fresh):
    zk.create(fresh + "/alpha", b"")
    open_node(page, node, fresh)
    page.get_by_test_id("child-filter-regex").check()
    page.get_by_test_id("child-filter").fill("al(")
    expect(page.get_by_test_id("filter-error")).to_contain_text("invalid regex")
    expect(page.get_by_test_id("child-row")).to_have_count(0)


def test_pages_declare_an_icon_that_loads(page, node, fresh):
    for url in (node.ui(fresh), node.url + "/ui/cluster", node.url + "/ui/login"):
        page.goto(url)
        href = page.locator('link[rel="icon"]').get_attribute("href")
        r = page.request.get(node.url + href)
        assert r.status == 200 and r.headers["content-type"].startswith("image/svg+xml"), (href, r.status)
