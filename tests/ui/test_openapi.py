"""The OpenAPI spec served at /api/v1/openapi.json checked against the implementation with
schemathesis, on a live node of its own (the fuzzer creates and deletes nodes at random).

Bounded: 30 examples per operation (SCHEMATHESIS_EXAMPLES), no stateful phase (about 15 s).
Fails on any 5xx and on any response that does not match the spec (status code, content type,
headers, body schema)."""

import os
import shutil
import subprocess
import sys

import pytest
import requests

from conftest import OUT, start_node
import zkharness as h

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
])


def schemathesis_cmd():
    exe = shutil.which("schemathesis") or shutil.which("st")
    return [exe] if exe else [sys.executable, "-m", "schemathesis.cli"]


def test_spec_is_valid_json_and_served(node):
    r = requests.get(node.api("/openapi.json"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/znodes/{path}" in spec["paths"]


def test_schemathesis_finds_no_server_errors_or_schema_mismatches(tmp_path):
    pytest.importorskip("schemathesis")
    node = start_node()
    try:
        requests.post(node.api("/znodes/fuzz"), json={"data": "seed"})
        OUT.mkdir(parents=True, exist_ok=True)
        junit = OUT / "schemathesis-junit.xml"
        cmd = schemathesis_cmd() + [
            "run", node.api("/openapi.json"),
            "--url", node.url,
            "--checks", CHECKS,
            "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", "30"),
            "--phases", "examples,coverage,fuzzing",
            "--seed", "1",
            "--workers", "1",
            "--request-timeout", "10",
            "--generation-database", "none",
            "--exclude-path", "/api/v1/watch",  # a WebSocket upgrade, tested in test_rest_ws.py
            "--exclude-path", "/api/v1/cluster/stream",  # endless server-sent events, tested in test_cluster_live.py
            "--suppress-health-check", "all",
            "--no-color",
            "--report", "junit", "--report-junit-path", str(junit),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=170, cwd=tmp_path)
        log = OUT / "schemathesis.log"
        log.write_text(proc.stdout + "\n" + proc.stderr)
        assert proc.returncode == 0, f"schemathesis failed (full log: {log}):\n{proc.stdout[-12000:]}\n{proc.stderr[-3000:]}"
    finally:
        h.destroy(node.server)
