"""Shared by the fused-trainer suites: drawn DLN GD/SGD problems and the comparison with verify.train.dln.train_gd plus
numerics.dln_gd.GDStats (the reference), at a relative tolerance on parameters, step sums and loss."""
import math

import numpy as np
import torch
from hypothesis import strategies as st

from numerics.dln_gd import GDStats
from verify.train.dln import init_params, train_gd
from verify.train.kernels.step_sums import StepScale

EPS = np.finfo(np.float64).eps


@st.composite
def gd_problems(draw, max_R=4, max_n=9, max_d=12, max_steps=20):
    """kind, X (per-run or shared), y, params0 (perturbed standard init), stable eta (when `diverge`, the last run's
    x 1e8: loss > 1e100 within 2-3 steps, so rounding is amplified over at most as many steps of its blow-up),
    steps, check_every, tol (a fraction of the smallest initial loss: some runs converge), SGD batches drawn with
    replacement."""
    kind = draw(st.sampled_from(["pm", "uv"]))
    R, n, d = draw(st.integers(1, max_R)), draw(st.integers(1, max_n)), draw(st.integers(1, max_d))
    shared_x, shared_y, sgd, diverge = (draw(st.booleans()) for _ in range(4))
    steps, check_every = draw(st.integers(0, max_steps)), draw(st.integers(1, 8))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    X = torch.randn(*((n, d) if shared_x else (R, n, d)), generator=g, dtype=torch.float64)
    y = torch.randn(*((n,) if shared_y else (R, n)), generator=g, dtype=torch.float64)
    alpha = 0.1 + 0.9 * torch.rand(R, generator=g, dtype=torch.float64)
    p0 = init_params(kind, alpha, d)
    p0 = p0 * (1 + 0.3 * torch.rand(p0.shape, generator=g, dtype=torch.float64))
    lam = float(torch.linalg.matrix_norm(X, ord=2).max()) ** 2 / n
    eta = draw(st.floats(0.1, 1.0)) * 0.1 / (lam * (1 + float(alpha.max()) ** 2 + float(y.abs().max())))
    eta = torch.full((R,), eta, dtype=torch.float64) * (1 + torch.rand(R, generator=g, dtype=torch.float64))
    if diverge:
        eta[-1] *= 1e8
    L0 = float((0.5 * ((torch.einsum("...nd,rd->rn", X, p0[:, 0] ** 2 - p0[:, 1] ** 2 if kind == "pm"
                                     else p0[:, 0] * p0[:, 1]) - y) ** 2).mean(-1)).min())
    tol = draw(st.sampled_from([0.0, 1e-24, 0.9])) * L0
    batches = None
    if sgd:
        idx = torch.randint(0, n, (max(steps, 1), draw(st.integers(1, n))), generator=g)
        batches = lambda k: idx[k]  # noqa: E731
    return dict(kind=kind, X=X, y=y, params0=p0, eta=eta, steps=steps, check_every=check_every, tol=tol,
                batches=batches)


def reference(kind, X, y, params0, eta, steps, check_every, tol, batches, alpha=1.0):
    """train_gd with GDStats (init scale ``alpha``) and the step sums' rounding yardstick recorded by on_step."""
    R, d = params0.shape[0], params0.shape[2]
    st_ = GDStats(kind, alpha, R, d)
    sx = StepScale(kind, eta)

    def on_step(k, g, active):
        st_.update(g, eta, active)
        sx.update(g, active)

    with np.errstate(all="ignore"):
        res = train_gd(kind, X, y, params0, eta, steps, tol=tol, check_every=check_every, batches=batches,
                       on_step=on_step)
    if sx.abs_x is None:
        sx.abs_x = torch.zeros(R, d, dtype=params0.dtype)
    return res, st_, sx


def assert_agrees(problem, res, sums, rtol):
    """Statuses and steps equal; parameters within rtol of each run's largest; step sums within rtol of their
    rounding yardstick (StepScale); final loss within rtol of 0.5 mean((|X||b| + |y|)^2)."""
    ref, st_, sx = reference(**problem)
    assert res.status == ref.status, (res.status, ref.status)
    assert np.array_equal(res.steps, ref.steps), (res.steps, ref.steps)
    scale = ref.params.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1e-300)
    dp = ((res.params - ref.params).abs() / scale).max().item()
    assert dp <= rtol, f"parameters differ by {dp:.2e} of their scale"
    for name, a, b in (("q+", sums.qp, st_.qp), ("q-", sums.qm, st_.qm)):
        rel = sx.relative(a, b).max().item()
        assert rel <= rtol, f"{name} sums differ by {rel:.2e} of their rounding yardstick"
    assert torch.equal(sums.degenerate.cpu(), st_.degenerate.cpu())
    X, y, b = problem["X"], problem["y"], ref.b
    mag = 0.5 * ((torch.einsum("...nd,rd->rn", X.abs(), b.abs()) + y.abs()) ** 2).mean(-1).numpy()
    dl = np.abs(res.loss - ref.loss)
    ok = (dl <= rtol * mag) | (res.loss == ref.loss) | (np.isnan(res.loss) & np.isnan(ref.loss))
    assert ok.all(), f"loss differs: {dl}, scale {mag}"
    assert not any(math.isnan(v) for v in res.steps.astype(float))
    # |r(b1) - r(b2)| <= ||X|| ||b1 - b2|| / ||y|| for r(b) = ||X b - y|| / ||y||, plus rounding of the norms
    Xr = X if X.dim() == 3 else X.expand(len(b), *X.shape)
    yr = y if y.dim() == 2 else y.expand(len(b), *y.shape)
    lip = torch.linalg.matrix_norm(Xr, ord=2) / torch.linalg.vector_norm(yr, dim=-1)
    bound = (lip * torch.linalg.vector_norm(res.b - b, dim=-1)).numpy() + 64 * EPS * (1 + ref.residual)
    finite = np.isfinite(ref.residual)
    assert np.all(np.abs(res.residual - ref.residual)[finite] <= bound[finite]), (res.residual, ref.residual)
