"""Properties of the sharpness formulas and the minimum-sharpness SDP."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from numerics.sharpness import lam_max, min_sharpness, sharpness_full
from verify.sharpness import lanczos_top


@given(st.integers(0, 10**6), st.sampled_from([("uv", 2), ("pm", 2), ("shared", 1)]))
def test_hessian_formula_equals_autograd(seed, kk):
    kind, k = kk
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, 5)); y = rng.standard_normal(3)
    P = rng.standard_normal((2, k, 5))
    lz = lanczos_top(kind, torch.as_tensor(P), X, y).numpy()
    assert np.allclose(lz, sharpness_full(kind, P, X, y), rtol=1e-9, atol=1e-10)


@settings(max_examples=5)
@given(st.integers(0, 10**6))
def test_min_sharpness_below_any_interpolator(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2, 6)); y = rng.standard_normal(2)
    ms = min_sharpness(X, y)
    N = np.linalg.svd(X)[2][2:].T
    b = np.linalg.lstsq(X, y, rcond=None)[0][:, None] + N @ rng.standard_normal((4, 20))
    assert np.all(ms.value <= lam_max(X, np.abs(b.T)) * (1 + 1e-9))
    assert ms.gap <= 1e-7
