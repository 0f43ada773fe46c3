"""verify.all survives interruption with a valid report, records errors, and is reproducible by seed."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from verify.claims import Context, Measurement, claim, run_claim
from verify.claims.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
FAST = "linear.init.single,dln.gd.order"


def _run_all(out, *extra):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "verify.all", "--only", FAST, "--out", str(out), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_interrupted_run_leaves_valid_report_with_finished_records(tmp_path):
    proc = _run_all(tmp_path)
    report = tmp_path / "report.json"
    deadline = time.time() + 240
    while time.time() < deadline and not report.exists():
        time.sleep(0.05)
    assert report.exists(), proc.communicate()[0]
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    data = json.loads(report.read_text())
    assert len(data["records"]) >= 1
    assert all(r["status"] in ("pass", "fail", "error") for r in data["records"])
    assert data["environment"]["seed"] == 0 and "git" in data["environment"]


def test_same_seed_gives_identical_values(tmp_path):
    values = []
    for k in range(2):
        proc = _run_all(tmp_path / str(k), "--seed", "3")
        proc.communicate(timeout=600)
        recs = json.loads((tmp_path / str(k) / "report.json").read_text())["records"]
        values.append([(r["id"], r["value"], json.dumps(r["details"], sort_keys=True)) for r in recs])
    assert values[0] == values[1]


def test_claim_that_raises_is_recorded_as_error():
    @claim("test.raises", "a claim whose code raises", "none", kind="derived")
    def broken(ctx):
        raise RuntimeError("boom")

    try:
        rec = run_claim(REGISTRY["test.raises"], Context())
    finally:
        REGISTRY.pop("test.raises")
    assert rec["status"] == "error" and "boom" in rec["details"]["error"]
    json.dumps(rec, allow_nan=False)


def test_non_finite_value_is_a_failure_not_a_pass():
    @claim("test.nan", "a claim measuring NaN", "none", kind="derived")
    def nan_claim(ctx):
        return Measurement("m", float("nan"), 1.0)

    try:
        rec = run_claim(REGISTRY["test.nan"], Context())
    finally:
        REGISTRY.pop("test.nan")
    assert rec["status"] == "fail" and rec["value"] is None
    assert '"nan"' not in json.dumps(rec, allow_nan=False).lower()


def test_warnings_raised_by_a_claim_are_recorded_not_printed(capsys):
    import warnings

    @claim("test.warns", "a claim whose solver warns", "none", kind="derived")
    def warns(ctx):
        for _ in range(3):
            warnings.warn("Solution may be inaccurate", UserWarning)
        return Measurement("m", 0.0, 1.0)

    try:
        rec = run_claim(REGISTRY["test.warns"], Context())
    finally:
        REGISTRY.pop("test.warns")
    assert rec["status"] == "pass"
    ws = rec["details"]["warnings"]
    assert ws == [dict(category="UserWarning", message="Solution may be inaccurate", where=ws[0]["where"], count=3)]
    assert "inaccurate" not in capsys.readouterr().err
