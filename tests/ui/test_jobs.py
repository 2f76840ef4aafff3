"""Subtree jobs in the navigator: exporting, deleting (and cancelling the delete of) a
100,000-node subtree with a progress bar showing done/total, and export at `/`.

The 100,000 nodes are created in ten multis of 10,000 creates each (a few seconds), once for
the module; the tests then run in file order on what the previous one left. The cancel test
works on a subtree of 990,001 nodes (about half a minute to create): on an idle machine a
100,000-node delete ends before a click could cancel it."""

import json
import time

import pytest
import requests
from playwright.sync_api import expect

from conftest import shot

BIG = "/jobs-big"
GROUPS = 10
PER_GROUP = 9_999  # + the group itself: 10,000 creates per multi
TOTAL = 1 + GROUPS * (1 + PER_GROUP)  # 100,001 with the root
HUGE = "/jobs-huge"
HUGE_GROUPS = 99  # the job limit is 1,000,000 nodes
HUGE_TOTAL = 1 + HUGE_GROUPS * (1 + PER_GROUP)  # 990,001 with the root


def open_node(page, node, path):
    page.goto(node.ui(path))
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")


def count(node, path):
    """Nodes of the subtree at `path`, walked over REST (pages of 1000)."""
    n, todo = 0, [path]
    while todo:
        p = todo.pop()
        offset = 0
        r = requests.get(node.api("/znodes" + p), params={"children": "true", "limit": 1000})
        if r.status_code == 404:
            continue
        n += 1
        while True:
            page = r.json()["children"]
            todo += [it["path"] for it in page["items"] if it["stat"] and it["stat"]["numChildren"] > 0]
            n += sum(1 for it in page["items"] if not (it["stat"] and it["stat"]["numChildren"] > 0))
            offset += 1000
            if offset >= page["total"]:
                break
            r = requests.get(node.api("/znodes" + p), params={"children": "true", "limit": 1000, "offset": offset})
    return n


def make_subtree(node, root, groups):
    r = requests.delete(node.api("/znodes" + root), params={"recursive": "true", "job": "never"})
    assert r.status_code in (404, 200), r.text  # a leftover small enough, or none
    t0 = time.monotonic()
    assert requests.post(node.api("/znodes" + root), json={"data": "big"}).status_code == 201
    for g in range(groups):
        gp = f"{root}/g{g}"
        ops = [{"op": "create", "path": gp, "data": "group"}]
        ops += [{"op": "create", "path": f"{gp}/item-{i}", "data": f"v{i}"} for i in range(PER_GROUP)]
        r = requests.post(node.api("/multi"), json={"ops": ops}, timeout=120)
        assert r.status_code == 200, r.text[:300]
    print(f"created {1 + groups * (1 + PER_GROUP)} nodes in {time.monotonic() - t0:.1f} s")
    return root


@pytest.fixture(scope="module")
def big(node):
    return make_subtree(node, BIG, GROUPS)


@pytest.fixture(scope="module")
def huge(node):
    yield make_subtree(node, HUGE, HUGE_GROUPS)
    # What the cancelled job left goes, so that later tests do not walk it.
    r = requests.delete(node.api("/znodes" + HUGE), params={"recursive": "true", "job": "always"})
    if r.status_code == 202:
        jid = r.json()["job"]["id"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if requests.get(node.api(f"/jobs/{jid}")).json().get("state") != "running":
                break
            time.sleep(0.5)


def test_export_at_root_downloads_a_file(page, node, zk):
    """Whatever else the other tests left in the tree (large subtrees, nodes only some digest
    identity may read: those are left out and counted)."""
    zk.ensure_path("/jobs-root-marker")
    open_node(page, node, "/")
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_test_id("export-btn").click()
    doc = json.loads(open(dl.value.path()).read())
    assert doc["format"] == "roost-export-1" and doc["source"] == "/"
    names = [c["name"] for c in doc["nodes"][0]["children"]]
    assert "jobs-root-marker" in names
    assert doc["summary"]["skippedEphemeral"] >= 0
    assert dl.value.suggested_filename == "znodes_root.json"


def test_export_leaves_ephemeral_nodes_out_and_says_so(node, zk, fresh):
    zk.create(fresh + "/keep", b"k")
    zk.create(fresh + "/session", b"s", ephemeral=True)
    doc = requests.get(node.api("/export"), params={"path": fresh}).json()
    assert [c["name"] for c in doc["nodes"][0]["children"]] == ["keep"]
    assert doc["summary"]["skippedEphemeral"] == 1
    assert doc["summary"]["skippedEphemeralPaths"] == [fresh + "/session"]


def test_export_of_100k_nodes_streams_with_progress(page, node, big):
    open_node(page, node, big)
    t0 = time.monotonic()
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_test_id("export-btn").click()
        job = page.get_by_test_id("job").first
        expect(job.get_by_test_id("job-progress")).to_be_visible()
    path = dl.value.path()
    expect(job).to_have_attribute("data-state", "done", timeout=30_000)
    expect(job.get_by_test_id("job-count")).to_contain_text(f"{TOTAL:,} / {TOTAL:,} nodes")
    shot(page, "jobs-export-100k-done")
    doc = json.loads(open(path).read())
    assert doc["summary"]["nodes"] == TOTAL
    root = doc["nodes"][0]
    assert root["name"] == big.lstrip("/") and len(root["children"]) == GROUPS
    assert len(root["children"][3]["children"]) == PER_GROUP
    assert time.monotonic() - t0 < 45


def test_cancelling_a_delete_job_leaves_the_top_of_the_subtree(page, node, huge):
    open_node(page, node, huge)
    page.get_by_test_id("delete-btn").click()
    expect(page.get_by_test_id("delete-atomicity")).to_contain_text("not atomic")
    page.get_by_test_id("delete-recursive").check()
    page.get_by_test_id("delete-confirm").click()
    job = page.get_by_test_id("job").first
    expect(job).to_have_attribute("data-state", "running")
    # Progress shows nodes deleted so far out of the total once counted.
    expect(job.get_by_test_id("job-count")).to_contain_text(f"/ {HUGE_TOTAL:,} nodes", timeout=30_000)
    shot(page, "jobs-delete-running")
    job.get_by_test_id("job-cancel").click()
    expect(job).to_have_attribute("data-state", "cancelled", timeout=15_000)
    expect(job.get_by_test_id("job-outcome")).to_contain_text("leaves first")
    shot(page, "jobs-delete-cancelled")
    jid = job.get_attribute("data-job-id")
    j = requests.get(node.api(f"/jobs/{jid}")).json()
    assert j["state"] == "cancelled" and 0 < j["done"] < HUGE_TOTAL, j
    left = count(node, huge)
    assert left == HUGE_TOTAL - j["done"], (left, j)
    # The page stays on the node (it still exists) rather than jumping to the parent.
    assert page.url.rstrip("/").endswith(huge)


def test_deleting_a_large_subtree_shows_progress_and_ends_on_the_parent(page, node, big):
    left = count(node, big)
    open_node(page, node, big)
    # On an idle machine the job can end (and the page move on) before an assertion could
    # look at the panel, so an observer reports the progress bar the moment it appears.
    seen = []
    page.expose_function("jobProgressSeen", lambda: seen.append(True))
    page.evaluate("""() => new MutationObserver(() => {
        if (!window.__jobProgressSeen && document.querySelector('[data-testid="job-progress"]')) {
            window.__jobProgressSeen = true;
            window.jobProgressSeen();
        }
    }).observe(document.body, {childList: true, subtree: true})""")
    t0 = time.monotonic()
    page.get_by_test_id("delete-btn").click()
    page.get_by_test_id("delete-recursive").check()
    page.get_by_test_id("delete-confirm").click()
    # Done: the page goes to the parent, and the panel there shows nothing running.
    page.wait_for_url(node.ui("/"), timeout=60_000)
    assert seen, "no progress bar was shown while the job ran"
    assert requests.get(node.api("/znodes" + big)).status_code == 404
    jobs = requests.get(node.api("/jobs")).json()["jobs"]
    done = [j for j in jobs if j["kind"] == "delete" and j["path"] == big and j["state"] == "done"]
    assert done and done[0]["done"] == left == done[0]["total"], jobs[:2]
    assert time.monotonic() - t0 < 60
