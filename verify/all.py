"""``python -m verify.all``: run every registered claim, print a table, write report.json and plots."""
from __future__ import annotations

import argparse
import fnmatch
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from .claims import Context, load_all, run_claim
from .device import pick_device
from .report import environment, write_atomic


class ClaimTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float | None):
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def _raise(signum, frame):
        raise ClaimTimeout(f"claim exceeded --timeout {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m verify.all", description=__doc__)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="quick", action="store_true", default=True, help="quick sizes (default)")
    size.add_argument("--full", dest="quick", action="store_false", help="the papers' sizes (GPU recommended)")
    p.add_argument("--only", default="*", help="glob or substring of claim ids, comma-separated (e.g. 'dln.flow.*')")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--timeout", type=float, default=None, help="seconds per claim; a claim past it is an error")
    p.add_argument("--list", action="store_true", help="list the registered claims and exit")
    return p.parse_args(argv)


def select(ids, pattern: str):
    pats = [q.strip() for q in pattern.split(",") if q.strip()]
    return [i for i in ids if any(fnmatch.fnmatch(i, q) or q in i for q in pats)]


def summary_table(records) -> Table:
    table = Table(title="claims")
    for col in ("claim", "value", "tolerance", "status", "seconds"):
        table.add_column(col, justify="right" if col in ("value", "tolerance", "seconds") else "left")
    colors = {"pass": "green", "fail": "red", "error": "magenta", "skipped": "yellow"}
    for r in records:
        v, tol = r.get("value"), r.get("tolerance")
        fmt = lambda x: f"{x:.3g}" if isinstance(x, (int, float)) else "-" if x is None else str(x)  # noqa: E731
        table.add_row(r["id"], fmt(v), fmt(tol), f"[{colors.get(r['status'], 'white')}]{r['status']}[/]",
                      f"{r['seconds']:.1f}")
    return table


def main(argv=None) -> int:
    args = parse_args(argv)
    console = Console()
    torch.set_default_dtype(torch.float64)
    registry = load_all()
    if args.list:
        for cid, c in registry.items():
            console.print(f"{cid}: {c.statement} [{c.source}]")
        return 0
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)  # networks here are small: thread fan-out costs more than it gains
    ctx = Context(quick=args.quick, seed=args.seed, device=device, out=args.out)
    ids = select(list(registry), args.only)
    if not ids:
        console.print(f"[red]no claim matches --only {args.only!r}[/]")
        return 2
    report_path = args.out / "report.json"
    env = environment(str(device), args.seed, args.quick)
    records: list[dict] = []
    start = time.perf_counter()

    def write(interrupted: bool = False):
        counts = {s: sum(r["status"] == s for r in records) for s in ("pass", "fail", "error", "skipped")}
        write_atomic(report_path, {"environment": env, "records": records, "summary": counts,
                                   "complete": not interrupted and len(records) == len(ids),
                                   "seconds": time.perf_counter() - start})

    try:
        for k, cid in enumerate(ids, 1):
            console.print(f"[{k}/{len(ids)}] {cid} ...", end=" ")
            with time_limit(args.timeout):
                try:
                    rec = run_claim(registry[cid], ctx)
                except ClaimTimeout as exc:
                    rec = {"id": cid, "statement": registry[cid].statement, "source": registry[cid].source,
                           "status": "error", "metric": "", "value": None, "tolerance": None,
                           "details": {"error": str(exc)}, "seconds": args.timeout, "device": str(device)}
            records.append(rec)
            nw = sum(w["count"] for w in rec["details"].get("warnings", []))
            console.print(f"{rec['status']} ({rec['seconds']:.1f} s{f', {nw} warnings in the report' if nw else ''})")
            write()
    except KeyboardInterrupt:
        write(interrupted=True)
        console.print(f"[yellow]interrupted: {len(records)} finished records written to {report_path}[/]")
        return 130
    console.print(summary_table(records))
    console.print(f"report: {report_path}  ({time.perf_counter() - start:.1f} s)")
    return 0 if all(r["status"] in ("pass", "skipped") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
