"""Four-letter words on the client port: the same command against Apache ZooKeeper 3.8 and the
candidate must give output of the same SHAPE (values such as counters, paths and versions differ).
"""

import re

import pytest

import zkharness as h

# Keys the reference (zookeeper-compat.md §8.2) lists as always present in mntr.
MNTR_REQUIRED = [
    "version", "server_state", "avg_latency", "max_latency", "min_latency", "packets_received",
    "packets_sent", "num_alive_connections", "outstanding_requests", "uptime", "znode_count",
    "watch_count", "ephemerals_count", "approximate_data_size", "global_sessions", "local_sessions",
    "open_file_descriptor_count", "max_file_descriptor_count",
]
SRVR_LABELS = ["Zookeeper version", "Latency min/avg/max", "Received", "Sent", "Connections",
               "Outstanding", "Zxid", "Mode", "Node count"]
CONF_KEYS = ["clientPort", "dataDir", "tickTime", "maxClientCnxns", "minSessionTimeout",
             "maxSessionTimeout", "serverId"]


def both(servers, word):
    ref, cand = servers
    return h.four_letter(ref.port, word), h.four_letter(cand.port, word)


def labels(text, sep):
    return [line.split(sep, 1)[0] for line in text.splitlines() if line]


@pytest.mark.parametrize("word,expected", [("ruok", "imok"), ("isro", "rw")])
def test_exact_replies(servers, word, expected):
    ref, cand = both(servers, word)
    # No trailing newline: kazoo's RW pinger compares isro's reply with b"rw" exactly.
    assert ref == expected
    assert cand == expected


def test_envi(servers):
    ref, cand = both(servers, "envi")
    for text in (ref, cand):
        lines = text.splitlines()
        assert lines[0] == "Environment:"
        # kazoo's server_version() parses this line from a single recv(8192).
        assert re.fullmatch(r"zookeeper\.version=3\.8\.\d+-\S*, built on .+", lines[1]), lines[1]
        assert len(text.encode()) < 8192
    # Same key set, except the JVM-only java.* keys a non-Java server cannot meaningfully report.
    keys = lambda t: {k for k in labels(t, "=")[1:] if not k.startswith("java.")}  # noqa: E731
    assert keys(cand) == keys(ref)


def test_srvr(servers):
    ref, cand = both(servers, "srvr")
    assert labels(ref, ":") == SRVR_LABELS
    assert labels(cand, ":") == SRVR_LABELS
    for text in (ref, cand):
        assert "\nMode: standalone\n" in text  # zkServer.sh status parses this line
        assert re.search(r"^Zxid: 0x[0-9a-f]+$", text, re.M)
        assert re.search(r"^Latency min/avg/max: \d+/[\d.]+/\d+$", text, re.M)


def test_stat(servers):
    ref, cand = both(servers, "stat")
    for text in (ref, cand):
        lines = text.splitlines()
        assert lines[0].startswith("Zookeeper version: ")
        assert lines[1] == "Clients:"
        assert re.fullmatch(r" /127\.0\.0\.1:\d+\[\d+\]\(queued=\d+,recved=\d+,sent=\d+\)", lines[2])
        assert "Mode: standalone" in lines


def test_mntr(servers):
    ref, cand = both(servers, "mntr")
    for text in (ref, cand):
        for line in text.splitlines():
            assert re.fullmatch(r"zk_\w+\t.*", line), line
        keys = {line.split("\t")[0][3:] for line in text.splitlines()}
        missing = [k for k in MNTR_REQUIRED if k not in keys]
        assert not missing, f"mntr lacks {missing}"
        assert "zk_server_state\tstandalone" in text.splitlines()


def test_conf(servers):
    ref, cand = both(servers, "conf")
    for text, server in zip((ref, cand), servers):
        conf = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        assert [k for k in CONF_KEYS if k not in conf] == []
        assert conf["clientPort"] == str(server.port)


def test_wchs(servers):
    ref, cand = both(servers, "wchs")
    for text in (ref, cand):
        assert re.fullmatch(r"\d+ connections watching \d+ paths\nTotal watches:\d+\n", text), text


def test_whitelist_refusal(restricted_servers):
    for word in ("envi", "mntr", "isro"):
        ref, cand = both(restricted_servers, word)
        expected = f"{word} is not executed because it is not in the whitelist.\n"
        assert ref == expected
        assert cand == expected
    ref, cand = both(restricted_servers, "ruok")
    assert ref == cand == "imok"
