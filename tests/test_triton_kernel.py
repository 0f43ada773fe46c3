"""verify.train.kernels.dln_triton run by Triton's interpreter on CPU tensors equals verify.train.dln.train_gd + GDStats to 1e-12
(relative: parameters to each run's scale, step sums to their rounding yardstick) on drawn shapes (n, d not powers
of two), per-run and shared X, packed and single-run programs, tl.dot, SGD batches with repeats, diverging runs."""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernel is decorated: set before triton is imported

import pytest  # noqa: E402

pytest.importorskip("triton", reason="triton is not installed (pip install -e '.[gpu]'); the kernel's CPU check "
                                     "runs in Triton's interpreter")

import torch  # noqa: E402
from _fused_reference import assert_agrees, gd_problems  # noqa: E402
from hypothesis import given, strategies as st  # noqa: E402

from verify.train.dln import init_params  # noqa: E402
from verify.train.kernels import dln_triton  # noqa: E402

if not dln_triton.INTERPRET:
    pytest.skip("verify.train.kernels.dln_triton was imported before TRITON_INTERPRET=1 was set: run this file alone",
                allow_module_level=True)

RTOL = 1e-12


@given(problem=gd_problems(max_R=4, max_n=9, max_d=12, max_steps=12), block_r=st.sampled_from([None, 1, 2, 4]))
def test_kernel_equals_train_gd(problem, block_r):
    res, sums = dln_triton.train_gd(**problem, block_r=block_r)
    assert_agrees(problem, res, sums, RTOL)


@pytest.mark.parametrize("kind", ["pm", "uv"])
def test_shared_x_dot_path_with_a_partial_program(kind):
    g = torch.Generator().manual_seed(4)
    R, n, d = 17, 17, 20
    X, y = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(R, n, generator=g, dtype=torch.float64)
    eta = torch.full((R,), 0.004, dtype=torch.float64)
    eta[3] = 40.0
    problem = dict(kind=kind, X=X, y=y, params0=init_params(kind, torch.linspace(0.2, 1.0, R), d), eta=eta, steps=9,
                   check_every=4, tol=0.0, batches=None)
    assert dln_triton.launch_config(R, n, d, True, 16, cuda=False)["USE_DOT"]
    res, sums = dln_triton.train_gd(**problem, block_r=16)
    assert res.status[3] == "diverged" and res.steps[3] in (4, 8, 9)
    assert_agrees(problem, res, sums, RTOL)
    plain, none = dln_triton.train_gd(**problem, block_r=16, stats=False)
    assert none is None and plain.status == res.status and torch.equal(plain.params, res.params)


def test_diverged_run_keeps_its_last_checked_state():
    g = torch.Generator().manual_seed(9)
    X, y = torch.randn(3, 6, 7, generator=g, dtype=torch.float64), torch.randn(3, 6, generator=g, dtype=torch.float64)
    p0 = init_params("pm", [0.5, 0.5, 0.5], 7)
    eta = torch.tensor([1e-3, 1e-3, 50.0], dtype=torch.float64)
    res, _ = dln_triton.train_gd("pm", X, y, p0, eta, 30, check_every=1, tol=0.0)
    assert res.status == ["max_steps", "max_steps", "diverged"]
    k = int(res.steps[2])
    before, _ = dln_triton.train_gd("pm", X, y, p0, eta, k - 1, check_every=1, tol=0.0)
    assert torch.equal(res.params[2], before.params[2])


def test_kernel_compiles_for_h200_without_spills():
    """Ahead of time for sm_90 (Triton's bundled ptxas, no GPU): every launch configuration lowers, and the n = 40,
    d = 100 per-run kernel keeps X in registers (a layout that replicated the state once spilled 13 KB per thread)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | {"TRITON_DEFAULT_FP_FUSION": "1"}
    p = subprocess.run([sys.executable, "-m", "verify.train.kernels.aot"], capture_output=True, text=True, env=env,
                       timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    line = next(s for s in p.stdout.splitlines() if s.startswith("per-run n=40 d=100 f64"))
    assert " 0 B stack/thread" in line, line
