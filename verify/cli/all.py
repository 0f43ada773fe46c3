"""``python -m verify.all``: run every registered claim, print a table, write report.json and plots."""
from __future__ import annotations

import fnmatch
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .args import BadArgument, Parser, check_out, nonnegative_int, positive_int, positive_seconds, seed_list
from verify.claims import KINDS, load_all
from verify.train.device import pick_device
from verify.files import write_atomic
from .report import environment
from verify.sweeps.cluster import connect, disconnect
from .costs import expected_seconds, previous_seconds
from .runner import Outcome, iter_sorted, run_dask, run_local, tasks

KIND_COLORS = {"derived": "cyan", "empirical": "blue", "refuted": "dark_orange"}
STATUS_COLORS = {"pass": "green", "fail": "red", "error": "magenta", "skipped": "yellow"}


def parse_args(argv=None):
    p = Parser(prog="python -m verify.all", description=__doc__)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="quick", action="store_true", default=True, help="quick sizes (default)")
    size.add_argument("--full", dest="quick", action="store_false", help="the papers' sizes (GPU recommended)")
    p.add_argument("--only", default="*", help="glob or substring of claim ids, comma-separated (e.g. 'dln.flow.*')")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=nonnegative_int, default=None, help="one seed (default 0)")
    seeds.add_argument("--seeds", type=seed_list, default=None,
                       help="several seeds, e.g. 0-9: per claim, passes out of the seeds and the worst value")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--timeout", type=positive_seconds, default=None,
                   help="seconds per claim; a claim past it is an error")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                   help="Dask workers of a local cluster, one single-threaded process each (default: one per core); "
                        "1 runs every claim in this process")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:port)")
    p.add_argument("--list", action="store_true", help="list the registered claims with their kinds and exit")
    args = p.parse_args(argv)
    args.seeds = args.seeds or [0 if args.seed is None else args.seed]
    return args


def select(ids, pattern: str):
    pats = [q.strip() for q in pattern.split(",") if q.strip()]
    return [i for i in ids if any(fnmatch.fnmatch(i, q) or q in i for q in pats)]


def _fmt(x) -> str:
    return f"{x:.3g}" if isinstance(x, (int, float)) else "-" if x is None else str(x)


def verdict(rec) -> str:
    """Status shown in the table: a refuted claim whose counterexample reproduced shows as `refuted`."""
    if rec["status"] == "pass" and rec.get("kind") == "refuted":
        return f"[{KIND_COLORS['refuted']}]refuted[/]"
    return f"[{STATUS_COLORS.get(rec['status'], 'white')}]{rec['status']}[/]"


def _kind(k: str) -> str:
    return f"[{KIND_COLORS.get(k, 'white')}]{k}[/]"


def summary_table(records) -> Table:
    table = Table(title="claims")
    for col in ("claim", "kind", "value", "tolerance", "verdict", "seconds"):
        table.add_column(col, justify="right" if col in ("value", "tolerance", "seconds") else "left")
    for r in records:
        table.add_row(r["id"], _kind(r.get("kind", "")), _fmt(r.get("value")), _fmt(r.get("tolerance")), verdict(r),
                      f"{r['seconds']:.1f}")
    return table


def _badness(rec) -> float:
    """How far a record is from failing: value / tolerance (value itself at tolerance 0); errors rank worst."""
    v, tol = rec.get("value"), rec.get("tolerance")
    if v is None:
        return float("inf")
    return v / tol if tol else v


def per_claim(records, ids) -> list[dict]:
    """Over seeds: passes out of runs and the worst value (largest value / tolerance) per claim."""
    rows = []
    for cid in ids:
        recs = [r for r in records if r["id"] == cid]
        if not recs:
            continue
        worst = max(recs, key=_badness)
        rows.append(dict(id=cid, kind=recs[0].get("kind"), passes=sum(r["status"] == "pass" for r in recs),
                         runs=len(recs), failing_seeds=[r["seed"] for r in recs if r["status"] != "pass"],
                         worst_value=worst.get("value"), worst_seed=worst["seed"], tolerance=worst.get("tolerance"),
                         seconds=sum(r["seconds"] for r in recs)))
    return rows


def seeds_table(rows, n_seeds: int) -> Table:
    table = Table(title=f"claims over {n_seeds} seeds")
    for col in ("claim", "kind", "passes", "worst value", "tolerance", "failing seeds", "seconds"):
        table.add_column(col, justify="left" if col in ("claim", "kind", "failing seeds") else "right")
    for r in rows:
        c = "green" if r["passes"] == r["runs"] else "red"
        table.add_row(r["id"], _kind(r["kind"]), f"[{c}]{r['passes']}/{r['runs']}[/]", _fmt(r["worst_value"]),
                      _fmt(r["tolerance"]), ",".join(map(str, r["failing_seeds"])) or "-", f"{r['seconds']:.1f}")
    return table


def running_table(outcome: Outcome) -> Table:
    table = Table(title="running", show_edge=False)
    table.add_column("claims on worker")
    table.add_column("seconds", justify="right")
    now = time.perf_counter()
    for name, since in outcome.running.values():
        table.add_row(name, f"{now - since:.0f}")
    return table


def main(argv=None) -> int:
    console = Console()
    try:
        args = parse_args(argv)
        if args.list:
            return list_claims(console)
        device = pick_device(args.device)
        check_out(args.out)
    except (BadArgument, ValueError, RuntimeError) as exc:
        print(f"python -m verify.all: error: {exc}", file=sys.stderr)
        return 2
    registry = load_all()
    ids = select(list(registry), args.only)
    if not ids:
        print(f"python -m verify.all: error: argument --only: no claim matches {args.only!r}", file=sys.stderr)
        return 2
    todo = tasks(registry, ids, args.seeds, args.quick, str(device), args.out, args.timeout)
    distributed = args.scheduler is not None or (args.workers > 1 and len(todo) > 1)
    client = cluster = None
    if distributed:
        try:
            client, cluster = connect(args.scheduler, min(args.workers, len(todo)), fork=True)
        except ValueError as exc:
            print(f"python -m verify.all: error: {exc}", file=sys.stderr)
            return 2
    report_path = args.out / "report.json"
    cost = {**expected_seconds(args.quick), **previous_seconds(report_path, args.quick)}
    env = environment(str(device), args.seeds[0] if len(args.seeds) == 1 else args.seeds, args.quick)
    env["workers"] = "scheduler " + args.scheduler if args.scheduler else (args.workers if distributed else 1)
    outcome = Outcome()
    start = time.perf_counter()
    total = len(ids) * len(args.seeds)

    def write(interrupted: bool = False):
        records = list(iter_sorted(outcome.records, ids))
        counts = {s: sum(r["status"] == s for r in records) for s in ("pass", "fail", "error", "skipped")}
        payload = {"environment": env, "records": records, "summary": counts,
                   "complete": not interrupted and len(records) == total, "seconds": time.perf_counter() - start}
        if len(args.seeds) > 1:
            payload["per_claim"] = per_claim(records, ids)
        write_atomic(report_path, payload)

    def on_record(rec):
        nw = sum(w["count"] for w in rec["details"].get("warnings", []))
        tag = f" seed {rec['seed']}" if len(args.seeds) > 1 else ""
        console.print(f"[{len(outcome.records)}/{total}] {rec['id']}{tag} ... {verdict(rec)} ({rec['seconds']:.1f} s"
                      f"{f', {nw} warnings in the report' if nw else ''})")
        write()

    try:
        if distributed:
            with Live(running_table(outcome), console=console, refresh_per_second=2, transient=True) as live:
                run_dask(client, todo, outcome, on_record, poll=lambda: live.update(running_table(outcome)), cost=cost)
        else:
            run_local(todo, outcome, on_record)
    except KeyboardInterrupt:
        write(interrupted=True)
        console.print(f"[yellow]interrupted: {len(outcome.records)} finished records written to {report_path}[/]")
        return 130
    finally:
        disconnect(client, cluster)
    records = list(iter_sorted(outcome.records, ids))
    if len(args.seeds) == 1:
        console.print(summary_table(records))
    else:
        console.print(seeds_table(per_claim(records, ids), len(args.seeds)))
    console.print(f"report: {report_path}  ({time.perf_counter() - start:.1f} s, "
                  f"{env['workers']} worker{'s' if env['workers'] != 1 else ''})")
    return 0 if all(r["status"] in ("pass", "skipped") for r in records) else 1


def list_claims(console: Console) -> int:
    registry = load_all()
    for kind, meaning in KINDS.items():
        console.print(f"{_kind(kind)}: {meaning}", soft_wrap=True)
    for cid, c in registry.items():
        console.print(f"{cid} ({_kind(c.kind)}): {c.statement} [{c.source}]", soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
