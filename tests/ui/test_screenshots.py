"""Every page in light and dark at laptop and phone width, saved under test-output/ui/pages/
for a person to look at; each must render without a JavaScript error or sideways scrolling."""

import json

import pytest
from playwright.sync_api import expect

from conftest import shot

PAGES = {
    "node": "/ui/t/screens/app/config",
    "leaf": "/ui/t/screens/app/config/limits",
    "nonode": "/ui/t/screens/missing/node",
    "cluster": "/ui/cluster",
    "sessions": "/ui/sessions",
    "search": "/ui/search?q=config",
    "login": "/ui/login",
}
SIZES = {"laptop": (1360, 860), "phone": (390, 844)}


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_renders(browser, node, zk, theme, size):
    if not zk.exists("/t/screens/app/config"):
        config = {"service": "payments", "replicas": 3, "region": "eu-west-1",
                  "endpoints": ["https://pay-1.internal:8443", "https://pay-2.internal:8443"],
                  "tls": {"enabled": True, "minVersion": "1.3"}, "featureFlags": {"instantRefunds": False},
                  "timeoutMs": 2500, "owner": None}
        zk.create("/t/screens/app/config", json.dumps(config, separators=(",", ":")).encode(), makepath=True)
        zk.create("/t/screens/app/config/limits", b"daily=100000")
    w, hgt = SIZES[size]
    ctx = browser.new_context(viewport={"width": w, "height": hgt}, color_scheme=theme, is_mobile=size == "phone")
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        for name, url in PAGES.items():
            page.goto(node.url + url)
            if name in ("node", "leaf", "cluster", "sessions"):
                expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
            wide = page.evaluate("() => document.documentElement.scrollWidth > innerWidth + 1")
            assert not wide, f"{name} scrolls sideways at {size} width"
            shot(page, f"pages/{name}-{size}-{theme}")
        assert not errors, errors
    finally:
        ctx.close()
