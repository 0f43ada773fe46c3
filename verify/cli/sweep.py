"""``python -m verify.sweep``: the command line of :mod:`verify.sweeps.engine`."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from verify.sweeps.engine import BUILTIN, TASKS, get_task, plan, run_sweep, write_csv
from verify.sweeps.engine import __doc__ as engine_doc

from .args import BadArgument, Parser, check_out


def parse_values(text: str) -> list:
    """'10:40' (inclusive), '10:40:5', '1e-2,1e-40', '5' -> values (ints where integral, else floats)."""
    vals: list = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"empty value in {text!r}")
        if ":" in item:
            parts = item.split(":")
            if len(parts) not in (2, 3):
                raise ValueError(f"{item!r}: a range is A:B or A:B:STEP (integers, B included)")
            try:
                a, b, *st = (int(p) for p in parts)
            except ValueError:
                raise ValueError(f"{item!r}: range ends and step must be integers") from None
            step = st[0] if st else 1
            if step < 1 or b < a:
                raise ValueError(f"{item!r}: ranges go upward with a step >= 1")
            vals += list(range(a, b + 1, step))
        else:
            try:
                v = float(item)
            except ValueError:
                raise ValueError(f"{item!r} is not a number") from None
            vals.append(int(v) if v.is_integer() and "." not in item and "e" not in item.lower() else v)
    return vals


def parse_args(argv=None) -> argparse.Namespace:
    p = Parser(prog="python -m verify.sweep", description=engine_doc.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", nargs="?", help="task name (phase) or module:ATTRIBUTE")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUES",
                   help="grid values, e.g. n=10:40 (B included), alpha=1e-2,1e-40; repeat for each parameter")
    p.add_argument("--trials", type=int, default=100, help="instances per grid cell (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk-size", type=int, default=200, help="instances per chunk = per batched call (default 200)")
    p.add_argument("--out", type=Path, default=Path("results/sweep"))
    p.add_argument("--workers", type=int, default=None,
                   help="LocalCluster workers (default: one per core); 0 computes in this process")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://HOST:PORT)")
    p.add_argument("--csv", action="store_true", help="also write DIR/table.csv")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--list", action="store_true", help="list the tasks and their parameters")
    args = p.parse_args(argv)
    if args.list:
        return args
    if args.task is None:
        raise BadArgument("a task is required (python -m verify.sweep --list)")
    try:
        args.task_obj = get_task(args.task)
    except ValueError as exc:
        raise BadArgument(str(exc)) from None
    grid: dict[str, list] = {}
    for item in args.param:
        name, eq, text = item.partition("=")
        if not eq or not name.strip():
            raise BadArgument(f"argument --param: {item!r} is not NAME=VALUES")
        try:
            args.task_obj.param(name.strip())
            grid[name.strip()] = parse_values(text)
        except ValueError as exc:
            raise BadArgument(f"argument --param: {exc}") from None
    args.grid = grid
    if args.trials < 1:
        raise BadArgument(f"argument --trials: must be >= 1, got {args.trials}")
    if args.chunk_size < 1:
        raise BadArgument(f"argument --chunk-size: must be >= 1, got {args.chunk_size}")
    if args.seed < 0:
        raise BadArgument(f"argument --seed: must be >= 0, got {args.seed}")
    if args.workers is not None and args.workers < 0:
        raise BadArgument(f"argument --workers: must be >= 0, got {args.workers}")
    if args.workers is not None and args.scheduler:
        raise BadArgument("--workers and --scheduler exclude each other (the cluster has its own workers)")
    try:
        args.plan = plan(args.task_obj, grid, args.trials, args.seed, args.chunk_size)
    except ValueError as exc:
        raise BadArgument(str(exc)) from None
    check_out(args.out)
    return args


def _list_tasks() -> None:
    for name in sorted(set(BUILTIN) | set(TASKS)):
        t = get_task(name)
        print(f"{t.name}: {t.help}")
        for p in t.params:
            default = ",".join(str(v) for v in p.default)
            print(f"  {p.name} ({p.type.__name__}{', vector' if p.vector else ''}; default {default}): {p.help}")


def main(argv=None) -> int:
    from verify.sweeps.cluster import connect, disconnect

    try:
        args = parse_args(argv)
    except BadArgument as exc:
        print(f"python -m verify.sweep: error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        _list_tasks()
        return 0
    from rich.console import Console

    console = Console(stderr=True, soft_wrap=True)
    done_before = sum((args.out / "chunks" / c.file).exists() for c in args.plan)
    client = cluster = None
    if done_before < len(args.plan) and args.workers != 0:
        try:
            client, cluster = connect(args.scheduler, args.workers or os.cpu_count() or 1, connect_timeout=3.0)
        except ValueError as exc:
            print(f"python -m verify.sweep: error: {exc}", file=sys.stderr)
            return 2
    where = (f"scheduler {args.scheduler}" if args.scheduler else "this process" if client is None
             else f"{len(client.scheduler_info()['workers'])} local workers")
    console.print(f"{args.task_obj.name}: {len(args.plan)} chunks ({done_before} already in {args.out}), "
                  f"{args.trials} trials per cell, on {where}")
    start = time.perf_counter()
    try:
        res = run_sweep(args.task_obj, args.grid, args.trials, args.seed, args.chunk_size, args.out,
                        workers=args.workers, client=client, progress=args.progress)
    except KeyboardInterrupt:
        n = sum((args.out / "chunks" / c.file).exists() for c in args.plan)
        print(f"interrupted: {n}/{len(args.plan)} chunks in {args.out}; rerun the same command to resume",
              file=sys.stderr)
        return 130
    finally:
        disconnect(client, cluster)
    if args.csv and res.table:
        write_csv(res.table, args.out / "table.csv")
    for cid, msg in res.errors.items():
        console.print(f"[red]chunk {cid} failed[/]: {msg}")
    rows = len(next(iter(res.table.values()))) if res.table else 0
    console.print(f"{len(res.computed)} computed, {len(res.reused)} reused, {len(res.errors)} failed; {rows} rows "
                  f"in {time.perf_counter() - start:.1f} s -> {args.out}")
    if res.summary is not None and "lines" in res.summary:
        for line in res.summary["lines"]:
            console.print(line)
    return 0 if res.ok else 1

