"""The sessions page and the cluster page's sessions and watches follow changes by themselves."""

from kazoo.client import KazooClient
from playwright.sync_api import expect

from conftest import shot


def _client(node):
    c = KazooClient(hosts=node.zk, timeout=15)
    c.start(timeout=30)
    return c


def test_sessions_page_is_live(page, node, zk, fresh):
    page.goto(node.url + "/ui/sessions")
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
    other = _client(node)
    try:
        sid = "0x%x" % other.client_id[0]
        eph = other.create(fresh + "/live-eph-", b"", ephemeral=True, sequence=True)
        row = page.locator(f'[data-testid=sessions] tr[data-session="{sid}"]')
        expect(row).to_contain_text(eph, timeout=3_000)
        shot(page, "sessions-live")
    finally:
        other.stop()
        other.close()
    expect(page.locator(f'[data-testid=sessions] tr[data-session="{sid}"]')).to_have_count(0, timeout=5_000)


def test_cluster_page_watches_and_sessions_are_live(page, node, zk, fresh):
    zk.create(fresh + "/watched-later", b"")
    page.goto(node.url + "/ui/cluster")
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
    other = _client(node)
    try:
        sid = "0x%x" % other.client_id[0]
        other.get(fresh + "/watched-later", watch=lambda event: None)
        watch_row = page.get_by_test_id("watches").locator("tr", has_text=fresh + "/watched-later")
        expect(watch_row).to_contain_text(sid, timeout=3_000)
        expect(page.locator(f'[data-testid=cluster-sessions] tr[data-session="{sid}"]')).to_have_count(1)
        # Links in live rows keep working.
        watch_row.get_by_role("link", name=fresh + "/watched-later").click()
        expect(page.get_by_test_id("breadcrumb")).to_contain_text("watched-later")
    finally:
        other.stop()
        other.close()
