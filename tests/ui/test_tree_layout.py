"""The tree at depth and scale, natural order, the leaf layout and the phone layout: what the
user sees is checked by element bounds, not by markup."""

import json

from playwright.sync_api import expect

from conftest import shot


def open_node(page, node, path):
    page.goto(node.ui(path))
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")


def _inside(inner, outer, slack=1):
    return (inner["x"] >= outer["x"] - slack and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack)


def test_twenty_levels_deep_is_readable(page, node, zk, fresh):
    path = fresh + "".join(f"/level-{i:02d}" for i in range(1, 21))
    zk.create(path, b"deep", makepath=True)
    open_node(page, node, path)
    current = page.locator('#tree a[aria-current="page"]')
    expect(current).to_have_text("level-20")
    pane = page.locator(".tree-pane").bounding_box()
    box = current.bounding_box()
    assert _inside(box, pane), f"current tree item {box} not inside the tree pane {pane}"
    # Not squeezed to "l…": the whole name is rendered.
    assert current.evaluate("a => a.scrollWidth <= a.clientWidth + 1")
    shot(page, "tree-depth-20")


def test_deep_link_past_the_first_page_shows_and_selects_the_node(page, node, zk, fresh):
    big = fresh + "/big"
    zk.create(big, b"")
    results = [zk.create_async(f"{big}/item-{i}", b"") for i in range(10001)]
    for r in results:
        r.get(timeout=60)
    # Past the first page of the tree (200) whether names sort naturally or by bytes.
    for name in ("item-10000", "item-9999"):
        open_node(page, node, f"{big}/{name}")
        item = page.locator(f'#tree li[data-path="{big}/{name}"] > div > a')
        expect(item).to_be_visible()
        expect(item).to_have_attribute("aria-current", "page")
        shot(page, "tree-deep-link-big")


def test_natural_order_in_children_and_tree(page, node, zk, fresh):
    for name in ("n10", "n2", "n0", "n1"):
        zk.create(f"{fresh}/{name}", b"")
    open_node(page, node, fresh)
    names = page.locator('[data-testid="child-row"] a.name').all_inner_texts()
    assert names == ["n0", "n1", "n2", "n10"], names
    page.locator(f'#tree li[data-path="{fresh}"] > div > .tw').click()
    expect(page.locator(f'#tree li[data-path="{fresh}"] > ul > li > div > a')).to_have_text(["n0", "n1", "n2", "n10"])


def test_expand_arrow_appears_after_import_and_live_children(page, node, zk, fresh, tmp_path):
    zk.create(fresh + "/src/a/b", b"x", makepath=True)
    zk.create(fresh + "/leafy", b"")
    zk.create(fresh + "/other", b"")
    open_node(page, node, fresh + "/leafy")
    twisty = page.locator(f'#tree li[data-path="{fresh}/leafy"] > div > .tw')
    expect(twisty).to_have_text("")
    export = page.request.get(node.api("/export?path=" + fresh + "/src")).json()
    f = tmp_path / "src.json"
    f.write_text(json.dumps(export))
    page.get_by_test_id("import-btn").click()
    page.get_by_test_id("import-file").set_input_files(str(f))
    page.get_by_test_id("import-submit").click()
    expect(page.locator("#toast")).to_contain_text("Imported")
    expect(twisty).not_to_have_text("")
    # A sibling that gets a child from another client gets its arrow too.
    other = page.locator(f'#tree li[data-path="{fresh}/other"] > div > .tw')
    expect(other).to_have_text("")
    zk.create(fresh + "/other/kid", b"")
    expect(other).to_have_text("▸")


def test_leaf_gives_the_data_the_width(page, node, zk, fresh):
    zk.create(fresh + "/leaf", b'{"a": 1}')
    open_node(page, node, fresh + "/leaf")
    main = page.locator("main.node").bounding_box()
    editor = page.get_by_test_id("editor").bounding_box()
    assert editor["width"] >= 0.8 * main["width"], (editor, main)
    shot(page, "leaf")
    # Children appearing make it a two-column page again.
    zk.create(fresh + "/leaf/kid", b"")
    expect(page.locator(".cols")).not_to_have_class("cols leaf")
    expect(page.get_by_test_id("child-row")).to_have_count(1)


def _phone(browser):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    return ctx, page


def _cells_outside(page, selector):
    return page.evaluate("""(sel) => Array.from(document.querySelectorAll(sel))
        .filter(e => e.offsetParent !== null)
        .map(e => [e.textContent.trim().slice(0, 40), e.getBoundingClientRect()])
        .filter(([, r]) => r.left < -1 || r.right > innerWidth + 1)
        .map(([t, r]) => `${t} [${Math.round(r.left)}, ${Math.round(r.right)}]`)""", selector)


def test_phone_tables_acl_and_breadcrumb_fit(browser, node, zk, fresh):
    path = fresh + "/configuration/production/services/payment-gateway"
    zk.create(path, b"x", makepath=True)
    eph_client_node = zk.create(fresh + "/configuration/worker-", b"", ephemeral=True, sequence=True)
    zk.exists(path, watch=lambda e: None)
    ctx, page = _phone(browser)
    try:
        for url, sel in (("/ui/cluster", "table td, table th"), ("/ui/sessions", "table td")):
            page.goto(node.url + url)
            expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
            bad = _cells_outside(page, sel)
            assert not bad, f"{url}: cut off on a phone: {bad}"
            shot(page, "phone" + url.replace("/", "-"))
        assert eph_client_node
        open_node(page, node, path)
        crumbs = page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid=breadcrumb] a'))
            .map(a => [a.textContent, a.getClientRects().length, a.getBoundingClientRect().height])""")
        one_line = crumbs[0][2]
        for text, rects, height in crumbs:
            assert rects == 1 and height <= one_line * 1.5, f"breadcrumb segment {text!r} broken inside: {crumbs}"
        page.get_by_test_id("tab-acl").click()
        box = page.locator(".acl-id").first.bounding_box()
        assert box["width"] >= 180, f"ACL id field too narrow on a phone: {box}"
        assert not _cells_outside(page, "table.acl td")
        shot(page, "phone-acl")
    finally:
        ctx.close()
