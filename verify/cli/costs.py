"""Expected seconds per claim (quick and --full): the order in which Dask gets the tasks when --out holds no report.

Refresh from reports of one-worker runs: ``python -m verify.cli.costs quick results/report.json [...]``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from verify.files import write_atomic

TABLE = Path(__file__).with_name("costs.json")


def expected_seconds(quick: bool) -> dict[str, float]:
    """Shipped mean seconds per claim at this size (empty if the table is missing or unreadable)."""
    try:
        return {k: float(v) for k, v in json.loads(TABLE.read_text())["quick" if quick else "full"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def mean_seconds(records: list[dict]) -> dict[str, float]:
    """Mean seconds per claim over report records."""
    out: dict[str, list[float]] = {}
    for r in records:
        if isinstance(r.get("seconds"), (int, float)):
            out.setdefault(r["id"], []).append(float(r["seconds"]))
    return {k: round(sum(v) / len(v), 2) for k, v in sorted(out.items())}


def previous_seconds(report: Path, quick: bool) -> dict[str, float]:
    """Mean seconds per claim in an earlier report of the same size (empty if none or unreadable)."""
    try:
        rep = json.loads(Path(report).read_text())
        same = rep["environment"]["mode"] == ("quick" if quick else "full")
        return mean_seconds(rep["records"]) if same else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("quick", "full"):
        print("usage: python -m verify.cli.costs quick|full REPORT.json [...]", file=sys.stderr)
        return 2
    table = json.loads(TABLE.read_text()) if TABLE.exists() else {}
    table[argv[0]] = mean_seconds([r for a in argv[1:] for r in json.loads(Path(a).read_text())["records"]])
    write_atomic(TABLE, dict(sorted(table.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
