"""The per-run-data fast path of train_gd (row-vector bmm's) agrees with grad_b's einsum form to rounding."""
import torch
from hypothesis import given
from hypothesis import strategies as st

from verify.train.dln import _grad_b_batched, grad_b, init_params, train_gd


@given(R=st.integers(1, 6), n=st.integers(1, 8), d=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_batched_gradient_equals_grad_b_to_rounding(R, n, d, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(R, n, d, generator=g, dtype=torch.float64)
    y = torch.randn(R, n, generator=g, dtype=torch.float64)
    b = torch.randn(R, d, generator=g, dtype=torch.float64)
    ref = grad_b(X, y, b)
    # two length-d / length-n dot products: rounding error <= (n + d) eps |X| (|X||b| + |y|) / n
    bound = (n + d) * 2.3e-16 * (X.abs() * ((X.abs() * b.abs()[:, None, :]).sum(-1) + y.abs())[..., None]).sum(1) / n
    assert torch.all((_grad_b_batched(X, y, b) - ref).abs() <= bound + 1e-300)


def test_train_gd_per_run_data_matches_shared_data_run():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(6, 15, generator=g, dtype=torch.float64)
    y = torch.randn(6, generator=g, dtype=torch.float64)
    p0 = init_params("pm", [0.3, 0.1], 15)
    shared = train_gd("pm", X, y, p0, 0.02, 300, tol=0.0)
    per_run = train_gd("pm", X.expand(2, 6, 15), y.expand(2, 6), p0, 0.02, 300, tol=0.0)
    assert torch.allclose(shared.b, per_run.b, rtol=0, atol=1e-12)
