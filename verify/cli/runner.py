"""Run claims: in this process, or as Dask tasks (one task per fixture group and seed) on a local or remote cluster."""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from threadpoolctl import threadpool_limits

from verify.claims import Context, load_all, run_claim


class ClaimTimeout(Exception):
    pass


@dataclass(frozen=True)
class Task:
    """Claims of one fixture group at one seed, run in order in one process (they share its caches)."""

    ids: tuple[str, ...]
    seed: int
    quick: bool
    device: str
    out: Path
    timeout: float | None = None

    @property
    def name(self) -> str:
        return f"{self.ids[0]}{f' +{len(self.ids) - 1}' if len(self.ids) > 1 else ''} seed {self.seed}"


@dataclass
class Outcome:
    """What a run produced so far: records in completion order, and the workers' running tasks (for progress)."""

    records: list[dict] = field(default_factory=list)
    running: dict[str, tuple[str, float]] = field(default_factory=dict)


@contextmanager
def time_limit(seconds: float | None):
    """SIGALRM-based limit in the main thread; elsewhere the caller enforces it (Dask: the client)."""
    if not seconds or not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
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


def tasks(registry, ids: list[str], seeds: list[int], quick: bool, device: str, out: Path,
          timeout: float | None) -> list[Task]:
    """One task per (group, seed): a claim with a group joins the other selected claims of that group."""
    seen: dict[str, list[str]] = {}
    for cid in ids:
        seen.setdefault(registry[cid].group or cid, []).append(cid)
    out_of = (lambda s: out) if len(seeds) == 1 else (lambda s: out / f"seed{s}")
    return [Task(tuple(group), s, quick, device, out_of(s), timeout) for s in seeds for group in seen.values()]


def error_record(claim, task: Task, message: str, seconds: float = 0.0) -> dict:
    return {"id": claim.id, "statement": claim.statement, "source": claim.source, "kind": claim.kind,
            "seed": task.seed, "status": "error", "metric": "", "value": None, "tolerance": None,
            "details": {"error": message}, "seconds": seconds, "device": task.device}


def run_task(task: Task, on_record: Callable[[dict], None] | None = None) -> list[dict]:
    """Run a task's claims in order (in a Dask worker or in this process); any failure becomes an error record."""
    torch.set_default_dtype(torch.float64)
    dev = torch.device(task.device)
    if dev.type == "cpu":
        torch.set_num_threads(1)   # networks here are small: thread fan-out costs more than it gains
    registry = load_all()
    ctx = Context(quick=task.quick, seed=task.seed, device=dev, out=task.out)
    records = []
    with threadpool_limits(limits=1):   # one BLAS thread everywhere: the same reduction order in- and out-of-process
        for cid in task.ids:
            _run_one(registry[cid], ctx, task, records, on_record)
    return records


def _run_one(claim, ctx, task, records, on_record) -> None:
    with time_limit(task.timeout):
        try:
            rec = run_claim(claim, ctx)
        except ClaimTimeout as exc:
            rec = error_record(claim, task, str(exc), task.timeout)
    records.append(rec)
    if on_record is not None:
        on_record(rec)


def run_local(todo: list[Task], outcome: Outcome, on_record: Callable[[dict], None]) -> None:
    """Today's in-process path (``--workers 1``)."""
    for task in todo:
        outcome.running["local"] = (task.name, time.perf_counter())
        run_task(task, lambda rec: (outcome.records.append(rec), on_record(rec)))
    outcome.running.clear()


def run_dask(client, todo: list[Task], outcome: Outcome, on_record: Callable[[dict], None],
             poll: Callable[[], None] = lambda: None, cost: dict[str, float] | None = None) -> None:
    """Submit every task (longest expected first, from ``cost``), collect records as tasks finish; a dead worker or
    an overrun makes its claims errors."""
    registry = load_all()
    cost = cost or {}
    futures = {client.submit(run_task, t, key=f"claims-{k}-{t.name}", pure=False,
                             priority=int(1000 * sum(cost.get(c, 0.0) for c in t.ids))): t
               for k, t in enumerate(todo)}
    started: dict[str, float] = {}
    timed_out: set[str] = set()
    victims: set[str] = set()
    pending = set(futures)
    while pending:
        for f in [f for f in pending if f.status in ("finished", "error", "cancelled")]:
            pending.discard(f)
            task = futures[f]
            outcome.running.pop(f.key, None)
            if f.status != "finished" and f.key in victims:   # held by a worker restarted for another task's timeout
                again = client.submit(run_task, task, key=f"{f.key}-again", pure=False, priority=10**9)
                futures[again] = task
                pending.add(again)
                continue
            try:
                recs = f.result()
            except BaseException as exc:   # a worker that died or was restarted: its claims are errors, the run goes on
                late = f.key in timed_out
                msg = (f"claims exceeded --timeout {task.timeout:g} s each" if late
                       else f"task failed on its worker: {type(exc).__name__}: {exc}")
                recs = [error_record(registry[cid], task, msg, task.timeout if late else 0.0) for cid in task.ids]
            for rec in recs:
                outcome.records.append(rec)
                on_record(rec)
        _track_running(client, futures, pending, started, outcome)
        over, held = _enforce_timeouts(client, futures, pending, started)
        timed_out |= over
        victims |= held - over
        poll()
        if pending:
            time.sleep(0.2)


def _track_running(client, futures, pending, started, outcome) -> None:
    keys = {f.key: f for f in pending}
    for addr, running in client.processing().items():
        for key in running:
            if key in keys:
                started.setdefault(key, time.perf_counter())
                outcome.running[key] = (f"{futures[keys[key]].name} on {addr}", started[key])


def _enforce_timeouts(client, futures, pending, started) -> tuple[set[str], set[str]]:
    """Dask workers run tasks off their main thread (no SIGALRM): the client cancels a task past its limit and
    restarts its worker. Returns the keys it cancelled and the keys the restarted workers also held."""
    over, held = set(), set()
    for f in list(pending):
        t = futures[f]
        if t.timeout and f.key in started and time.perf_counter() - started[f.key] > t.timeout * len(t.ids):
            processing = client.processing()
            who = [a for a, ks in processing.items() if f.key in ks]
            held |= {k for a in who for k in processing[a]}
            f.cancel()
            over.add(f.key)
            if who:
                client.restart_workers(who)
    return over, held


def iter_sorted(records: list[dict], ids: list[str]) -> Iterator[dict]:
    """Records in (seed, registry order): the same report whatever the number of workers."""
    order = {cid: k for k, cid in enumerate(ids)}
    return iter(sorted(records, key=lambda r: (r.get("seed", 0), order.get(r["id"], len(order)))))
