"""``python -m verify.sweep TASK``: a grid of parameters x trials, cut into batched chunks, run on Dask, resumable.

A *task* (``SweepTask``) says which parameters it takes and how to run ONE chunk: a fixed value of every scalar
parameter and a range of trials, computed by one batched call (a batched predictor over a few hundred
instances). Vector parameters (e.g. the alpha list of the phase task, solved along one continuation) go whole to
every chunk. The grid is the product of the scalar parameters' values; each value combination gets ``--trials``
trials, cut into chunks of ``--chunk-size``.

Seeds: instance ``trial`` of cell ``params`` draws from ``numpy.random.SeedSequence([seed, trial, *h])`` with ``h``
four 32-bit words of the SHA-256 of the task name and the cell's scalar parameters (canonical JSON): the same
numbers whatever the chunking, the worker count or the machine, and unchanged when the grid or the vector
parameters grow.

Chunk files (``DIR/chunks/``), one per finished chunk, written atomically as it arrives: ``chunk-<id>.npz``, a
plain ``numpy.savez`` archive (a zip of ``.npy`` arrays, readable with ``numpy.load`` or any NPY reader): one
equal-length 1-D array per column, one row per instance, plus ``__meta__``, a 0-d string array holding JSON
(task, version, params, vector params, seed, trial range, seconds, host). ``<id>`` is a hash of exactly that
content description, so a rerun with the same arguments finds its finished chunks and recomputes only the missing
ones (a chunk that failed leaves ``chunk-<id>.error.json`` with its message instead, and is retried on the next
run). ``DIR/sweep.json`` lists the plan; at the end ``DIR/table.npz`` (all rows, same layout, no ``__meta__``),
``DIR/summary.json`` (the task's summary, when it has one) and ``DIR/plot.png``.

Exit status: 0 every chunk finished, 1 some chunk failed (recorded; the others ran), 2 bad arguments or an
unreachable scheduler (one line, nothing run), 130 interrupted (finished chunks are kept: rerun to resume).
"""
from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .cluster import connect, disconnect
from verify.files import atomic_file, jsonable, write_atomic

FORMAT = "verify.sweep/1"


# ------------------------------------------------------------------------------------------------ tasks

@dataclass(frozen=True)
class Param:
    """A task parameter: scalar ones span the grid (one value per chunk); vector ones go whole to every chunk."""

    name: str
    type: type
    default: tuple
    help: str = ""
    vector: bool = False


@dataclass(frozen=True)
class SweepTask:
    """``run(params, trials, seeds) -> columns``: ONE batched call over the instances ``trials`` (absolute trial
    numbers, one SeedSequence each) at the scalar values and vector lists in ``params``; returns equal-length 1-D
    arrays, one row per instance, with a ``trial`` column. ``check(params)`` raises ValueError for a bad cell;
    ``summary(table, config)`` and ``plot(table, config, path)`` are optional."""

    name: str
    params: tuple[Param, ...]
    run: Callable[[dict, np.ndarray, list], dict]
    check: Callable[[dict], None] | None = None
    summary: Callable[[dict, dict], dict] | None = None
    plot: Callable[[dict, dict, Path], str] | None = None
    version: str = "1"
    help: str = ""

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ValueError(f"task {self.name!r} has no parameter {name!r} (it takes: "
                         f"{', '.join(p.name for p in self.params)})")


TASKS: dict[str, SweepTask] = {}
BUILTIN = {"phase": "verify.sweeps.phase"}   # task name -> module that registers it (imported on first use)


def register(task: SweepTask) -> SweepTask:
    TASKS[task.name] = task
    return task


def get_task(ref: str | SweepTask) -> SweepTask:
    """A task by name (built-in or registered), or ``package.module:ATTRIBUTE`` for your own."""
    if isinstance(ref, SweepTask):
        return ref
    if ref in TASKS:
        return TASKS[ref]
    if ref in BUILTIN:
        importlib.import_module(BUILTIN[ref])
        return TASKS[ref]
    if ":" in ref:
        mod, _, attr = ref.partition(":")
        try:
            obj = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot load task {ref!r}: {type(exc).__name__}: {exc}") from None
        if not isinstance(obj, SweepTask):
            raise ValueError(f"{ref!r} is a {type(obj).__name__}, not a verify.sweeps.engine.SweepTask")
        return obj
    raise ValueError(f"unknown task {ref!r} (built in: {', '.join(sorted(set(BUILTIN) | set(TASKS)))}; "
                     f"or module:ATTRIBUTE)")


# ------------------------------------------------------------------------------------------------ plan

def _canon(x: Any) -> Any:
    if isinstance(x, (np.integer, int)) and not isinstance(x, bool):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return float(x)
    if isinstance(x, (list, tuple)):
        return [_canon(v) for v in x]
    return x


def _digest(obj: Any, length: int = 16) -> str:
    return hashlib.sha256(json.dumps(_canon(obj), sort_keys=True, allow_nan=False).encode()).hexdigest()[:length]


def cell_seed(task: str, seed: int, params: dict, trial: int) -> np.random.SeedSequence:
    """The SeedSequence of one instance: (seed, trial, hash of the task and the cell's scalar parameters)."""
    h = hashlib.sha256(json.dumps([task, _canon(params)], sort_keys=True).encode()).digest()
    words = [int.from_bytes(h[4 * i:4 * i + 4], "little") for i in range(4)]
    return np.random.SeedSequence([int(seed), int(trial), *words])


@dataclass(frozen=True)
class Chunk:
    task: str
    version: str
    params: tuple            # ((name, value), ...) scalar parameters, in the task's order
    vector: tuple            # ((name, (values...)), ...)
    seed: int
    start: int
    stop: int

    @property
    def description(self) -> dict:
        return dict(task=self.task, version=self.version, params=dict(self.params),
                    vector={k: list(v) for k, v in self.vector}, seed=self.seed, trials=[self.start, self.stop])

    @property
    def id(self) -> str:
        return _digest(self.description)

    @property
    def file(self) -> str:
        return f"chunk-{self.id}.npz"

    @property
    def error_file(self) -> str:
        return f"chunk-{self.id}.error.json"

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params) + f", trials {self.start}-{self.stop - 1}"


def _convert(p: Param, v) -> Any:
    try:
        if p.type is int:
            f = float(v)
            if not np.isfinite(f) or f != int(f):
                raise ValueError
            return int(f)
        if p.type is float:
            f = float(v)
            if not np.isfinite(f):
                raise ValueError
            return f
        return p.type(v)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {p.name}: {v!r} is not a finite {p.type.__name__}") from None


def resolve_grid(task: SweepTask, grid: dict[str, Sequence] | None) -> tuple[dict[str, list], dict[str, list]]:
    """(scalar grid, vector params) with defaults filled in and values converted; unknown names raise ValueError."""
    grid = dict(grid or {})
    for name in grid:
        task.param(name)
    scalars, vectors = {}, {}
    for p in task.params:
        vals = grid.get(p.name, p.default)
        vals = [vals] if np.ndim(vals) == 0 and not isinstance(vals, (list, tuple)) else list(vals)
        if not vals:
            raise ValueError(f"parameter {p.name}: no values")
        vals = [_convert(p, v) for v in vals]
        if p.vector:
            vectors[p.name] = vals
        else:
            if len(set(vals)) != len(vals):
                raise ValueError(f"parameter {p.name}: repeated values")
            scalars[p.name] = vals
    return scalars, vectors


def plan(task: SweepTask | str, grid: dict | None = None, trials: int = 100, seed: int = 0,
         chunk_size: int = 200) -> list[Chunk]:
    """Every chunk of the sweep, in grid order (the table's row order). Checks every cell with ``task.check``."""
    task = get_task(task)
    if int(trials) != trials or trials < 1:
        raise ValueError(f"trials must be an integer >= 1, got {trials!r}")
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk size must be an integer >= 1, got {chunk_size!r}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    scalars, vectors = resolve_grid(task, grid)
    vec = tuple((k, tuple(v)) for k, v in vectors.items())
    chunks = []
    names = list(scalars)
    for combo in itertools.product(*(scalars[k] for k in names)):
        params = dict(zip(names, combo))
        if task.check is not None:
            task.check({**params, **vectors})
        for start in range(0, int(trials), int(chunk_size)):
            chunks.append(Chunk(task.name, task.version, tuple(params.items()), vec, int(seed), start,
                                min(int(trials), start + int(chunk_size))))
    return chunks


# ------------------------------------------------------------------------------------------------ one chunk

def run_chunk(task_ref: str | SweepTask, chunk: Chunk) -> dict[str, np.ndarray]:
    """Compute one chunk (on a worker or here): one BLAS thread, so the numbers do not depend on where it runs."""
    from threadpoolctl import threadpool_limits

    task = get_task(task_ref)
    params = dict(chunk.params)
    trials = np.arange(chunk.start, chunk.stop)
    seeds = [cell_seed(task.name, chunk.seed, params, int(t)) for t in trials]
    start = time.perf_counter()
    with threadpool_limits(limits=1):
        cols = task.run({**params, **{k: list(v) for k, v in chunk.vector}}, trials, seeds)
    cols = {str(k): np.asarray(v) for k, v in cols.items()}
    if "trial" not in cols:
        raise ValueError(f"task {task.name!r} returned no 'trial' column")
    lengths = {k: v.shape for k, v in cols.items()}
    if any(len(s) != 1 for s in lengths.values()) or len({s[0] for s in lengths.values()}) != 1:
        raise ValueError(f"task {task.name!r} returned columns of unequal or non-1-D shapes: {lengths}")
    rows = len(cols["trial"])
    out = {k: np.full(rows, v) for k, v in params.items() if k not in cols}
    out.update(cols)
    out["__meta__"] = np.array(json.dumps(dict(chunk.description, seconds=time.perf_counter() - start,
                                               host=socket.gethostname(), format=FORMAT)))
    return out


def _save_npz(path: Path, cols: dict) -> None:
    with atomic_file(path, "wb") as fh:
        np.savez(fh, **cols)


def load_chunk(path: Path) -> dict[str, np.ndarray]:
    """Columns of one chunk file (``__meta__`` decoded into a dict)."""
    with np.load(path, allow_pickle=False) as z:
        cols = {k: z[k] for k in z.files}
    if "__meta__" in cols:
        cols["__meta__"] = json.loads(str(cols["__meta__"]))
    return cols


# ------------------------------------------------------------------------------------------------ the sweep

@dataclass
class SweepResult:
    table: dict[str, np.ndarray]
    config: dict
    computed: list[str] = field(default_factory=list)     # chunk ids computed in this run
    reused: list[str] = field(default_factory=list)       # chunk ids found on disk
    errors: dict[str, str] = field(default_factory=dict)  # chunk id -> message
    summary: dict | None = None
    plot: str | None = None
    out: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def concat(parts: list[dict]) -> dict[str, np.ndarray]:
    parts = [{k: v for k, v in p.items() if k != "__meta__"} for p in parts]
    if not parts:
        return {}
    keys = list(parts[0])
    for p in parts[1:]:
        keys += [k for k in p if k not in keys]
    table = {}
    for k in keys:
        cols = [p[k] if k in p else np.full(len(next(iter(p.values()))), np.nan) for p in parts]
        table[k] = np.concatenate(cols)
    return table


def _progress(enabled: bool, total: int, done: int):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    disable=not enabled, transient=False)
    tid = prog.add_task("chunks", total=total, completed=done, note="")
    return prog, tid


def run_sweep(task: SweepTask | str, grid: dict | None = None, trials: int = 100, seed: int = 0,
              chunk_size: int = 200, out: Path | str | None = None, workers: int | None = None,
              scheduler: str | None = None, client=None, progress: bool = True,
              on_chunk: Callable[[str, bool], None] | None = None, summarize: bool = True,
              draw: bool = True) -> SweepResult:
    """Run (or resume) a sweep. ``workers=0`` computes in this process; else a Dask client: ``client`` if given, else
    ``scheduler`` (an address), else a LocalCluster of ``workers`` (default: one per core) single-threaded
    processes. With ``out`` every finished chunk is written at once and finished chunks found there are reused.
    ``on_chunk(id, ok)`` is called after each chunk is recorded (a KeyboardInterrupt from it stops the sweep like
    Ctrl-C). Returns the table (rows of all finished chunks, in plan order) and what was computed, reused, failed."""
    task = get_task(task)
    chunks = plan(task, grid, trials, seed, chunk_size)
    scalars, vectors = resolve_grid(task, grid)
    config = dict(format=FORMAT, task=task.name, version=task.version, grid=scalars, vector=vectors,
                  trials=int(trials), seed=int(seed), chunk_size=int(chunk_size))
    out = Path(out) if out is not None else None
    results: dict[str, dict] = {}
    res = SweepResult(table={}, config=config, out=out)
    if out is not None:
        cdir = out / "chunks"
        cdir.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "sweep.json", dict(config, chunks=[dict(c.description, id=c.id, file=f"chunks/{c.file}")
                                                            for c in chunks]))
        for c in chunks:
            f = cdir / c.file
            if f.exists():
                try:
                    results[c.id] = load_chunk(f)
                    res.reused.append(c.id)
                except (OSError, ValueError, KeyError):   # a damaged file counts as missing
                    pass
    todo = [c for c in chunks if c.id not in results]

    def record(c: Chunk, cols: dict | None, message: str | None) -> None:
        if cols is not None:
            results[c.id] = cols
            res.computed.append(c.id)
            if out is not None:
                _save_npz(out / "chunks" / c.file, cols)
                (out / "chunks" / c.error_file).unlink(missing_ok=True)
        else:
            res.errors[c.id] = message or "unknown error"
            if out is not None:
                write_atomic(out / "chunks" / c.error_file, dict(c.description, id=c.id, error=message))
        if on_chunk is not None:
            on_chunk(c.id, cols is not None)

    prog, tid = _progress(progress, len(chunks), len(chunks) - len(todo))
    owned = None
    try:
        with prog:
            def advance():
                note = f"[red]{len(res.errors)} failed[/]" if res.errors else ""
                prog.update(tid, advance=1, note=note)

            if todo and (workers == 0 and client is None and scheduler is None):
                for c in todo:
                    try:
                        cols = run_chunk(task, c)
                        record(c, cols, None)
                    except Exception as exc:   # a failing chunk is recorded; the sweep goes on
                        record(c, None, f"{type(exc).__name__}: {exc}")
                    advance()
            elif todo:
                if client is None:
                    client, cluster = connect(scheduler, workers or os.cpu_count() or 1, connect_timeout=3.0)
                    owned = (client, cluster)
                from distributed import as_completed

                ref = task.name if task.name in TASKS or task.name in BUILTIN else task
                token = os.urandom(4).hex()   # fresh keys: a chunk cancelled in an earlier run may still be releasing
                futures = {client.submit(run_chunk, ref, c, key=f"sweep-{c.id}-{token}", pure=False): c for c in todo}
                try:
                    for f in as_completed(list(futures)):
                        c = futures[f]
                        try:
                            cols = f.result()
                            record(c, cols, None)
                        except Exception as exc:   # raised in the chunk, or its worker died (KilledWorker)
                            record(c, None, f"{type(exc).__name__}: {exc}")
                        advance()
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        if owned is not None:
            disconnect(*owned)
    res.table = concat([results[c.id] for c in chunks if c.id in results])
    complete = len(results) == len(chunks)
    if complete and summarize and task.summary is not None:
        res.summary = task.summary(res.table, config)
    if out is not None and complete:
        _save_npz(out / "table.npz", res.table)
        if res.summary is not None:
            write_atomic(out / "summary.json", jsonable(res.summary))
        if draw and task.plot is not None:
            res.plot = task.plot(res.table, config, out / "plot.png")
    return res


def write_csv(table: dict[str, np.ndarray], path: Path) -> None:
    """The tidy table as CSV (header line, one row per instance)."""
    import csv

    keys = list(table)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(keys)
        for row in zip(*(table[k].tolist() for k in keys)):
            w.writerow(row)
