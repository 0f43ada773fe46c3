"""verify.all: every claim declares a verdict kind; bad arguments give one line and exit status 2 before any claim."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from verify.cli import all as cli
from verify.claims import KINDS, Context, Measurement, claim, load_all, run_claim
from verify.claims.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "verify.all", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_every_registered_claim_has_one_of_the_three_kinds():
    kinds = {c.kind for c in load_all().values()}
    assert kinds <= set(KINDS) and kinds == {"derived", "empirical", "refuted"}


def test_a_claim_without_a_valid_kind_is_rejected():
    with pytest.raises(ValueError, match="kind must be one of"):
        claim("test.badkind", "s", "none", kind="theorem")
    with pytest.raises(TypeError):
        claim("test.nokind", "s", "none")


def test_record_carries_kind_and_seed():
    @claim("test.kind", "a refuted statement whose counterexample reproduces", "none", kind="refuted")
    def ok(ctx):
        return Measurement("m", 0.0, 1.0)

    try:
        rec = run_claim(REGISTRY["test.kind"], Context(seed=4))
    finally:
        REGISTRY.pop("test.kind")
    assert rec["kind"] == "refuted" and rec["seed"] == 4 and rec["status"] == "pass"
    assert "refuted" in cli.verdict(rec) and "pass" not in cli.verdict(rec)


def test_failing_refuted_claim_is_shown_as_failure():
    rec = {"status": "fail", "kind": "refuted"}
    assert "fail" in cli.verdict(rec)


@pytest.mark.parametrize("args, names", [
    (["--seed", "-1"], "--seed"), (["--seed", "x"], "--seed"), (["--seeds", "5-2"], "--seeds"),
    (["--timeout", "0"], "--timeout"), (["--timeout", "-3"], "--timeout"), (["--timeout", "nan"], "--timeout"),
    (["--device", "cuda:7"], "--device"), (["--device", "tpu0"], "--device"), (["--only", "no.such.claim"], "--only"),
    (["--out", "/proc/forbidden/x"], "--out"), (["--seed", "1", "--seeds", "0-2"], "--seeds"),
])
def test_bad_argument_gives_one_line_and_exit_2(args, names, tmp_path):
    if names == "--device" and args[1].startswith("cuda"):
        pytest.importorskip("torch")
        import torch
        if torch.cuda.device_count() > 7:
            pytest.skip("this machine has that CUDA device")
    res = _cli(*args, *([] if "--out" in args else ["--out", str(tmp_path)]))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "report.json").exists()


def test_out_below_a_file_is_a_bad_argument(tmp_path):
    (tmp_path / "file").write_text("")
    res = _cli("--out", str(tmp_path / "file" / "out"), "--only", "linear.init.single")
    assert res.returncode == 2 and "--out" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_seed_list_parses_ranges_and_lists():
    assert cli.seed_list("0-3,7") == [0, 1, 2, 3, 7]
    assert cli.seed_list("5") == [5]


def test_list_shows_each_claim_with_its_kind():
    res = _cli("--list")
    assert res.returncode == 0
    for cid, c in load_all().items():
        assert f"{cid} ({c.kind})" in res.stdout


def test_seeds_run_reports_passes_per_claim(tmp_path):
    res = _cli("--only", "linear.init.single", "--seeds", "0-1", "--out", str(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads((tmp_path / "report.json").read_text())
    assert [r["seed"] for r in data["records"]] == [0, 1]
    assert data["per_claim"][0]["passes"] == 2 and data["per_claim"][0]["runs"] == 2
    assert data["per_claim"][0]["kind"] == "derived"
