"""``python -m verify.gpu`` without CUDA (one line, exit 2) and its CUDA-vs-CPU claim comparison on written reports."""
import json
import subprocess
import sys

import pytest
import torch

from verify.cli import gpu, gpu_claims, gpu_rates


def test_without_cuda_it_says_so_in_one_line_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main([]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1 and "no CUDA" in out.err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_the_module_exits_2_on_a_machine_without_cuda():
    p = subprocess.run([sys.executable, "-m", "verify.gpu"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == "" and len(p.stderr.strip().splitlines()) == 1


def _report(path, recs):
    path.mkdir(parents=True)
    (path / "report.json").write_text(json.dumps({"records": recs}))


def test_claims_are_compared_per_claim_relative_to_the_cpu_tolerance(tmp_path):
    _report(tmp_path / "claims_cuda", [{"id": "a", "status": "pass", "value": 1.5e-9, "tolerance": 1e-8},
                                       {"id": "b", "status": "error", "value": None, "tolerance": 1.0}])
    _report(tmp_path / "claims_cpu", [{"id": "a", "status": "pass", "value": 1.0e-9, "tolerance": 1e-8},
                                      {"id": "b", "status": "pass", "value": 0.5, "tolerance": 1.0},
                                      {"id": "c", "status": "pass", "value": 0.1, "tolerance": 1.0}])
    rows = {r["id"]: r for r in gpu_claims.compare(gpu_claims.records(tmp_path / "claims_cuda"),
                                                   gpu_claims.records(tmp_path / "claims_cpu"))}
    assert rows["a"]["diff_over_tolerance"] == pytest.approx(0.05) and rows["a"]["same_status"]
    assert rows["b"]["diff_over_tolerance"] is None and not rows["b"]["same_status"]
    assert rows["c"]["status_cuda"] == "missing"


def test_on_chip_limit_is_4nd_flops_per_run_step():
    assert gpu_rates.limit(6.4e13, 40, 100) == pytest.approx(4e9)


def test_parts_are_written_and_a_disagreeing_kernel_sets_exit_1(monkeypatch, tmp_path, capsys):
    """The orchestration with the card's parts replaced by stand-ins (no CUDA here)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gpu, "matmul_rate", lambda dev, dtype, size: 6.4e13)
    monkeypatch.setattr(gpu, "copy_rate", lambda dev: 4e12)
    monkeypatch.setattr(gpu, "machine", lambda: {"cuda": "stand-in"})
    monkeypatch.setattr(gpu, "fused_trainer", lambda: "fused")
    monkeypatch.setattr(gpu_claims, "launch", lambda only, out, budget: {"only": only})
    monkeypatch.setattr(gpu_claims, "collect", lambda job, budget: {"rows": [], "max_diff_over_tolerance": None})
    cell = {"run_steps_per_s": 2e9}
    monkeypatch.setattr(gpu_rates, "sweep", lambda dev, Rs, fused, log: [{"R": R, "dtype": "f64", "fused": cell}
                                                                         for R in Rs])
    agree = {"kind": "pm", "case": "per_run", "ok": True, "same_status": True, "max_rel_params": 0.0,
             "max_stats_over_scale": 0.0}
    monkeypatch.setattr(gpu_rates, "agreement", lambda fused, dev: [agree])
    assert gpu.main(["--out", str(tmp_path), "--R", "256,65536"]) == 0
    res = json.loads((tmp_path / "gpu.json").read_text())
    assert res["on_chip_limit_run_steps_per_s"] == pytest.approx(4e9)
    assert [r["R"] for r in res["rates"]["rows"]] == [256, 65536] and "0.500" in capsys.readouterr().out
    monkeypatch.setattr(gpu_rates, "agreement", lambda fused, dev: [agree | {"ok": False}])
    assert gpu.main(["--out", str(tmp_path), "--skip", "rates"]) == 1
