"""verify.sweeps.engine: chunks on a Dask LocalCluster, deterministic seeds, resume after an interruption, failing chunks
and dead workers recorded, bad command lines exit 2 with one line."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _sweep_tasks import TOY
from verify.cli import sweep as sweep_cli
from verify.sweeps import engine as sweep

ROOT = Path(__file__).resolve().parents[1]
PHASE = dict(d=[12], s=[2], n=[4, 8], alpha=[1e-3, 1e-20])


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """One call log for this process and the cluster's workers (they inherit the environment when they start)."""
    import os

    path = tmp_path_factory.mktemp("sweep") / "calls.log"
    old = os.environ.get("SWEEP_CALL_LOG")
    os.environ["SWEEP_CALL_LOG"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SWEEP_CALL_LOG", None)
    else:
        os.environ["SWEEP_CALL_LOG"] = old


@pytest.fixture(scope="module")
def client(log):
    from verify.sweeps.cluster import connect

    c, cluster = connect(None, 2)
    yield c
    c.close()
    cluster.close()


def _calls(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _rows(table):
    """Rows as a sorted list of tuples: the table up to row order."""
    keys = sorted(table)
    cols = [["nan" if isinstance(v, float) and v != v else v for v in table[k].tolist()] for k in keys]
    return sorted(zip(*cols), key=repr)


def test_seeds_depend_on_cell_and_trial_only():
    a = sweep.cell_seed("toy", 0, {"a": 1, "b": 0.5}, 3)
    assert np.array_equal(np.random.default_rng(a).random(4),
                          np.random.default_rng(sweep.cell_seed("toy", 0, {"b": 0.5, "a": 1}, 3)).random(4))
    others = [sweep.cell_seed("toy", 1, {"a": 1, "b": 0.5}, 3), sweep.cell_seed("toy", 0, {"a": 2, "b": 0.5}, 3),
              sweep.cell_seed("toy", 0, {"a": 1, "b": 0.5}, 4), sweep.cell_seed("phase", 0, {"a": 1, "b": 0.5}, 3)]
    first = np.random.default_rng(a).random(4)
    assert all(not np.array_equal(first, np.random.default_rng(o).random(4)) for o in others)


def test_same_numbers_whatever_the_chunking_and_workers(client, tmp_path, log):
    serial = sweep.run_sweep(TOY, {"a": [1, 2, 3]}, trials=7, seed=5, chunk_size=7, workers=0, progress=False)
    dask = sweep.run_sweep(TOY, {"a": [1, 2, 3]}, trials=7, seed=5, chunk_size=3, client=client, progress=False,
                           out=tmp_path / "toy")
    assert serial.ok and dask.ok and len(dask.computed) == 9
    assert _rows(serial.table) == _rows(dask.table)
    assert set(serial.table) >= {"a", "b", "trial", "c", "value"} and len(serial.table["value"]) == 3 * 7 * 2
    # the real task: one batched predictor call per chunk, same numbers in 1 or 2 chunks, here or on the cluster
    one = sweep.run_sweep("phase", PHASE, trials=6, seed=1, chunk_size=6, workers=0, progress=False)
    two = sweep.run_sweep("phase", PHASE, trials=6, seed=1, chunk_size=4, client=client, progress=False)
    assert _rows(one.table) == _rows(two.table)
    assert one.summary is not None and one.summary["groups"][0]["reference"]["psi"] > 0


def test_interrupted_sweep_resumes_with_only_missing_chunks(client, tmp_path, log):
    grid, out = {"a": [1, 2]}, tmp_path / "run"
    full = sweep.run_sweep(TOY, grid, trials=12, seed=2, chunk_size=2, workers=0, progress=False)   # 12 chunks
    n0 = _calls(log)
    seen = []

    def stop_after_three(cid, ok):
        seen.append(cid)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(TOY, grid, trials=12, seed=2, chunk_size=2, client=client, out=out, progress=False,
                        on_chunk=stop_after_three)
    files = sorted((out / "chunks").glob("chunk-*.npz"))
    assert len(files) == 3 and json.loads((out / "sweep.json").read_text())["trials"] == 12
    time.sleep(0.5)                                    # chunks cancelled mid-flight may still log their call
    n1 = _calls(log)
    res = sweep.run_sweep(TOY, grid, trials=12, seed=2, chunk_size=2, client=client, out=out, progress=False)
    assert len(res.reused) == 3 and len(res.computed) == 9 and _calls(log) - n1 == 9
    assert _rows(res.table) == _rows(full.table) and n1 > n0
    # delete two chunk files: exactly those two are recomputed
    gone = [files[0], files[2]]
    for f in gone:
        f.unlink()
    n2 = _calls(log)
    res = sweep.run_sweep(TOY, grid, trials=12, seed=2, chunk_size=2, workers=0, out=out, progress=False)
    assert sorted(f"chunk-{c}.npz" for c in res.computed) == sorted(f.name for f in gone)
    assert _calls(log) - n2 == 2 and _rows(res.table) == _rows(full.table)
    assert (out / "table.npz").exists()
    meta = sweep.load_chunk(gone[0])["__meta__"]
    assert meta["task"] == "toy" and meta["format"] == sweep.FORMAT


def test_failing_chunk_and_dead_worker_are_recorded_and_the_sweep_goes_on(client, tmp_path, log, monkeypatch):
    out, grid = tmp_path / "errs", {"a": [1], "fail": [4], "die": [2]}
    res = sweep.run_sweep(TOY, grid, trials=8, seed=0, chunk_size=2, client=client, out=out, progress=False)
    msgs = list(res.errors.values())
    assert any("failed on purpose" in m for m in msgs) and any("KilledWorker" in m for m in msgs), msgs
    assert len(res.errors) + len(res.computed) == 4 and len(res.computed) >= 1   # a chunk queued on the dying
    errs = sorted((out / "chunks").glob("*.error.json"))                         # worker may fail with it
    assert len(errs) == len(res.errors) and all(json.loads(e.read_text())["error"] for e in errs)
    assert len(res.table["trial"]) == 2 * 2 * len(res.computed) and not (out / "table.npz").exists()
    monkeypatch.setenv("SWEEP_FAIL_OFF", "1")     # in this process only: the rerun computes here
    again = sweep.run_sweep(TOY, grid, trials=8, seed=0, chunk_size=2, workers=0, out=out, progress=False)
    assert again.ok and sorted(again.computed) == sorted(res.errors) and len(again.reused) == len(res.computed)
    assert (out / "table.npz").exists() and not list((out / "chunks").glob("*.error.json"))


def _main(capsys, *argv):
    start = time.perf_counter()
    code = sweep_cli.main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err, time.perf_counter() - start


@pytest.mark.parametrize("argv, needle", [
    (["phase", "-p", "m=3"], "has no parameter 'm'"),
    (["phase", "-p", "n=abc"], "not a number"),
    (["phase", "-p", "n=20:10"], "ranges go upward"),
    (["phase", "-p", "n=200"], "1 <= n <= d"),
    (["phase", "-p", "alpha=0"], "alpha must be > 0"),
    (["phase", "--trials", "0"], "--trials"),
    (["nosuchtask"], "unknown task"),
    (["phase", "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "exclude"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, tmp_path, argv, needle):
    code, err, _ = _main(capsys, *argv, "--out", str(tmp_path))
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "chunks").exists()


def test_unreachable_scheduler_exits_2_quickly(capsys, tmp_path):
    code, err, seconds = _main(capsys, "phase", "-p", "n=8", "--trials", "2", "--scheduler", "tcp://127.0.0.1:9",
                               "--out", str(tmp_path), "--no-progress")
    assert code == 2 and len(err.splitlines()) == 1 and "cannot reach" in err and seconds < 15, (err, seconds)


def test_command_line_writes_table_summary_and_plot(tmp_path):
    out = tmp_path / "cli"
    args = ["phase", "-p", "d=12", "-p", "s=2", "-p", "n=3:9:3", "-p", "alpha=1e-3,1e-20", "--trials", "4",
            "--workers", "0", "--out", str(out), "--no-progress", "--csv"]
    p = subprocess.run([sys.executable, "-m", "verify.sweep", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    table = dict(np.load(out / "table.npz"))
    assert len(table["trial"]) == 3 * 4 * 3 and set(np.unique(table["alpha"])) == {0.0, 1e-3, 1e-20}
    assert (out / "plot.png").stat().st_size > 0 and (out / "table.csv").read_text().startswith("d,")
    assert json.loads((out / "summary.json").read_text())["groups"][0]["s"] == 2
    assert "3 computed, 0 reused, 0 failed" in p.stderr
