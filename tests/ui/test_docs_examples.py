"""docs/NAVIGATOR.md's REST examples run in order, as written, against a new node: each `$ `
command of the console blocks of the REST section is run by bash with the node's address for
localhost:8080, and must answer 2xx (or the status its comment names, e.g. `# again: 409`)."""

import re
import subprocess

import pytest

from conftest import REPO, start_node
import zkharness as h

DOC = REPO / "docs" / "NAVIGATOR.md"
# Every curl reports its status on stderr, whatever it does with the body.
CURL = "curl() { command curl -w '%{stderr}HTTP %{http_code}\\n' \"$@\"; }\n"


def commands():
    text = DOC.read_text()
    rest = text[text.index("## REST API"):text.index("## WebSocket watch stream")]
    out = []
    for block in re.findall(r"```console\n(.*?)```", rest, re.S):
        cmd = None
        for line in block.splitlines():
            if cmd is None:
                if line.startswith("$ "):
                    cmd = line[2:]
                else:
                    continue
            else:
                cmd += "\n" + line
            # Complete when quotes balance and the line does not continue.
            if cmd.count("'") % 2 == 0 and not cmd.endswith("\\"):
                out.append(cmd)
                cmd = None
        assert cmd is None, f"unterminated example: {cmd}"
    return out


def test_rest_examples_run_in_order(tmp_path):
    node = start_node()
    try:
        base = f"127.0.0.1:{node.http_port}"
        cmds = commands()
        assert len(cmds) >= 25 and any("/api/v1/multi" in c for c in cmds), cmds
        for cmd in cmds:
            run = cmd.replace("http://localhost:8080", "http://" + base).replace("localhost:8080", base)
            expect = re.search(r"#[^\n]*\b([45]\d\d)\b", cmd)
            p = subprocess.run(["bash", "-c", CURL + run], cwd=tmp_path, capture_output=True, text=True, timeout=30)
            codes = re.findall(r"HTTP (\d{3})", p.stderr)
            if "curl" not in cmd:
                assert p.returncode == 0, f"{cmd}\n{p.stderr}"
                continue
            assert codes, f"no answer to:\n{cmd}\n{p.stderr}"
            want = expect.group(1) if expect else None
            got = codes[-1]
            ok = got == want if want else got.startswith("2")
            assert ok, f"{cmd}\n-> HTTP {got} (wanted {want or '2xx'})\n{p.stdout[:2000]}"
    finally:
        h.destroy(node.server)
