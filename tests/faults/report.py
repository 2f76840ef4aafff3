"""Figures derived from the run (write gaps, resume-after-election) and the JSON + text report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple


def longest_gap(acks: Sequence[float], start: float, end: float) -> Tuple[float, float]:
    """Longest interval within [start, end] without an acknowledged write: (length, where it began)."""
    points = [start] + [t for t in acks if start < t < end] + [end]
    best, at = 0.0, start
    for a, b in zip(points, points[1:]):
        if b - a > best:
            best, at = b - a, a
    return best, at


def first_after(acks: Sequence[float], t: float) -> Optional[float]:
    for a in acks:  # sorted
        if a >= t:
            return a
    return None


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))


def text_summary(r: dict) -> str:
    lines = [f"target={r['target']} seed={r['seed']} faults={len(r['faults'])} "
             f"duration={r['duration_s']:.0f}s ops={r['ops']['register']} creates={r['ops']['creates_ok']}",
             "",
             f"{'#':>2} {'fault':24} {'targets':10} {'heal':>6} {'gap':>6} {'leader':>7} {'resume':>7}"]
    for f in r["faults"]:
        res = f.get("resume_s")
        lines.append(f"{f['index']:>2} {f['kind']:24} {','.join(map(str, f['targets'])):10} "
                     f"{f['healed_after_s']:6.1f} {f['longest_write_gap_s']:6.2f} "
                     f"{('m' + str(f['new_leader'])) if f.get('new_leader') else '-':>7} "
                     f"{'%.2f' % res if res is not None else '-':>7}")
    lines.append("")
    for name, a in r["assertions"].items():
        lines.append(f"{'PASS' if a['ok'] else ('FAIL' if a['enforced'] else 'note')}  {name}: {a['detail']}")
    return "\n".join(lines) + "\n"
