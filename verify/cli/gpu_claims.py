"""The training claims run by ``python -m verify.all`` on CUDA and on CPU (two subprocesses), compared per claim."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

# claims whose networks are trained on ctx.device (the DLN GD claims train on the CPU whatever --device says)
TRAINING = "mf.commuting.limit,mf.sensing.nuclear,relu.width.sweep,relu.path.training"


def start(device: str, only: str, out: Path, timeout: float) -> subprocess.Popen:
    """``python -m verify.all --device DEVICE --workers 1 --only ONLY --out OUT --timeout T`` in the background."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "verify.all", "--device", device, "--workers", "1", "--only", only,
           "--out", str(out), "--timeout", f"{timeout:g}"]
    log = open(out / "log.txt", "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait(proc: subprocess.Popen, deadline: float) -> int | None:
    """The exit status, or None when it ran past ``deadline`` (time.monotonic) and was stopped."""
    try:
        return proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return None


def records(out: Path) -> dict[str, dict]:
    path = out / "report.json"
    if not path.exists():
        return {}
    return {r["id"]: r for r in json.loads(path.read_text()).get("records", [])}


def _number(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def compare(cuda: dict[str, dict], cpu: dict[str, dict]) -> list[dict]:
    """Per claim: both statuses, both values and |value_cuda - value_cpu| / tolerance (the CPU record's tolerance)."""
    rows = []
    for cid in sorted(set(cuda) | set(cpu)):
        a, b = cuda.get(cid, {}), cpu.get(cid, {})
        va, vb, tol = _number(a.get("value")), _number(b.get("value")), _number(b.get("tolerance"))
        diff = None if va is None or vb is None else abs(va - vb)
        rows.append({"id": cid, "status_cuda": a.get("status", "missing"), "status_cpu": b.get("status", "missing"),
                     "value_cuda": va, "value_cpu": vb, "tolerance": tol, "abs_diff": diff,
                     "diff_over_tolerance": None if diff is None or not tol else diff / abs(tol),
                     "same_status": a.get("status") == b.get("status"),
                     "seconds_cuda": a.get("seconds"), "seconds_cpu": b.get("seconds")})
    return rows


def launch(only: str, out: Path, timeout: float) -> dict:
    """Both runs at once in the background (the CPU one on the host's cores, the CUDA one mostly on the card)."""
    return {"t0": time.monotonic(), "only": only, "out": out,
            "procs": {dev: start(dev, only, out / f"claims_{dev}", timeout) for dev in ("cuda", "cpu")}}


def collect(job: dict, budget: float) -> dict:
    """Wait for both runs until ``budget`` s after launch (then stop them), compare what they wrote."""
    out = job["out"]
    codes = {dev: wait(p, job["t0"] + budget) for dev, p in job["procs"].items()}
    rows = compare(records(out / "claims_cuda"), records(out / "claims_cpu"))
    ratios = [r["diff_over_tolerance"] for r in rows if r["diff_over_tolerance"] is not None]
    return {"only": job["only"], "exit_codes": codes, "stopped_at_budget": [d for d, c in codes.items() if c is None],
            "rows": rows, "max_diff_over_tolerance": max(ratios, default=None),
            "all_same_status": all(r["same_status"] for r in rows) and bool(rows),
            "seconds": time.monotonic() - job["t0"]}
