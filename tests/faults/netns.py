"""Network namespaces for a 3-member test ensemble, and the iptables rules that cut links.

Layout (all names start with PREFIX so a crashed run's leftovers are recognisable and are
deleted before the next run builds anything):

    root namespace                      rf-br (bridge namespace)          rf-m<i> (member i)
    rf-h  10.77.0.254/24  <-- veth -->  rf-hb --+                         eth0 10.77.0.<i>/24
                                                +-- br0 -- rf-b<i> <-- veth --> (renamed eth0)

The bridge lives in its own namespace, not in the root one, so that the host's firewall (Docker sets
FORWARD to DROP) and br_netfilter settings cannot interfere, and so that deleting one namespace
removes the bridge with it. Clients run in the root namespace and reach every member through rf-h.

Partitions only cut member<->member traffic (rules match the peers' addresses inside a member's
namespace); the clients' link (10.77.0.254) is never cut. So a client can always reach every
running member, and a member that is cut off from the quorum must itself stop serving its clients
for them to move: exactly the server behaviour the suite wants to exercise.
"""

from __future__ import annotations

import subprocess
from typing import Iterable, List, Sequence

PREFIX = "rf-"
BRIDGE_NS = PREFIX + "br"
HOST_IF = PREFIX + "h"
HOST_IP = "10.77.0.254"
SUBNET_BITS = 24


def member_ns(member: int) -> str:
    return f"{PREFIX}m{member}"


def member_ip(member: int) -> str:
    return f"10.77.0.{member}"


class NetError(Exception):
    """A namespace or firewall command failed."""


def _run(argv: Sequence[str], check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise NetError(f"{' '.join(argv)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _ns(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["ip", "netns", "exec", ns, *argv], check=check)


def existing_namespaces() -> List[str]:
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def cleanup(members: Iterable[int] = (1, 2, 3)) -> List[str]:
    """Remove everything a previous run may have left: processes inside our namespaces (by pid,
    as listed by `ip netns pids`), the namespaces, and the root-namespace veth end.
    Returns what was removed, for the log. Safe to call when nothing exists."""
    removed: List[str] = []
    names = [n for n in existing_namespaces() if n.startswith(PREFIX)]
    for ns in names:
        pids = _run(["ip", "netns", "pids", ns], check=False).stdout.split()
        for pid in pids:
            _run(["kill", "-9", pid], check=False)
            removed.append(f"pid {pid} in {ns}")
    for ns in names:
        _run(["ip", "netns", "del", ns], check=False)
        removed.append(f"netns {ns}")
    if _run(["ip", "link", "show", HOST_IF], check=False).returncode == 0:
        _run(["ip", "link", "del", HOST_IF], check=False)
        removed.append(f"link {HOST_IF}")
    return removed


def setup(members: Sequence[int] = (1, 2, 3)) -> None:
    """Build the layout described in the module docstring (after deleting leftovers)."""
    cleanup(members)
    _run(["ip", "netns", "add", BRIDGE_NS])
    _ns(BRIDGE_NS, "ip", "link", "add", "br0", "type", "bridge")
    _ns(BRIDGE_NS, "ip", "link", "set", "br0", "up")
    _ns(BRIDGE_NS, "ip", "link", "set", "lo", "up")
    # host side
    _run(["ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", "rf-hb"])
    _run(["ip", "link", "set", "rf-hb", "netns", BRIDGE_NS])
    _run(["ip", "addr", "add", f"{HOST_IP}/{SUBNET_BITS}", "dev", HOST_IF])
    _run(["ip", "link", "set", HOST_IF, "up"])
    _ns(BRIDGE_NS, "ip", "link", "set", "rf-hb", "master", "br0")
    _ns(BRIDGE_NS, "ip", "link", "set", "rf-hb", "up")
    for m in members:
        ns = member_ns(m)
        _run(["ip", "netns", "add", ns])
        _ns(ns, "ip", "link", "set", "lo", "up")
        _run(["ip", "link", "add", f"rf-b{m}", "netns", BRIDGE_NS, "type", "veth", "peer", "name", f"rf-e{m}",
              "netns", ns])
        _ns(ns, "ip", "link", "set", f"rf-e{m}", "name", "eth0")
        _ns(ns, "ip", "addr", "add", f"{member_ip(m)}/{SUBNET_BITS}", "dev", "eth0")
        _ns(ns, "ip", "link", "set", "eth0", "up")
        _ns(BRIDGE_NS, "ip", "link", "set", f"rf-b{m}", "master", "br0")
        _ns(BRIDGE_NS, "ip", "link", "set", f"rf-b{m}", "up")


# ---------------------------------------------------------------------------------------------
# Firewall: rules live in the member namespaces' own filter tables, which only we use, so healing
# is a flush.

def heal(members: Iterable[int] = (1, 2, 3)) -> None:
    for m in members:
        _ns(member_ns(m), "iptables", "-w", "-F", "INPUT", check=False)
        _ns(member_ns(m), "iptables", "-w", "-F", "OUTPUT", check=False)


def cut(a: int, b: int, reject: bool = False) -> None:
    """Cut the link between members a and b in both directions, in both namespaces.
    reject=True answers TCP with a RST (the peer sees 'connection reset' at once) instead of
    silently dropping (the peer sees a timeout)."""
    for here, there in ((a, b), (b, a)):
        ns, ip = member_ns(here), member_ip(there)
        if reject:
            _ns(ns, "iptables", "-w", "-A", "INPUT", "-s", ip, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")
            _ns(ns, "iptables", "-w", "-A", "OUTPUT", "-d", ip, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")
        _ns(ns, "iptables", "-w", "-A", "INPUT", "-s", ip, "-j", "DROP")
        _ns(ns, "iptables", "-w", "-A", "OUTPUT", "-d", ip, "-j", "DROP")


def isolate(member: int, others: Iterable[int], reject: bool = False) -> None:
    for o in others:
        if o != member:
            cut(member, o, reject=reject)


def rules(member: int) -> str:
    return _ns(member_ns(member), "iptables", "-w", "-S", check=False).stdout
