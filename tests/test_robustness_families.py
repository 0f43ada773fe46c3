"""Bad inputs to the matrix-factorization, ReLU, linear, saddle-to-saddle and sharpness predictors (issue 8):
a ValueError with a message, or a finite result that passes a cheap correctness check; valid inputs never raise."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numerics.linear import deep_limit, kappa, one_layer_limit, pinv_solution
from numerics.matrix import (balance_gap, balanced_factors, commuting_basis, commuting_limit, commuting_trajectory,
                             effective_rank, integrate_end_to_end, integrate_svd2, min_nuclear_norm,
                             min_trace_commuting, nuclear_norm, nuclear_regularized_completion,
                             nuclear_regularized_cvxpy, psd_power, require_balanced)
from numerics.relu import forward, init_closed_forms, segment_measures, segment_profile, two_layer
from numerics.saddles import l1_kkt_residual, nnls, saddle_to_saddle
from numerics.sharpness import (gf_path_sharpness, gfs_sharpness, hessian_full, min_sharpness, min_sharpness_n1,
                                sharpness_interp)
from numerics.validate import pow2_scale
from verify.testing import problems as P, strategies as ibs
from verify.testing.assertions import assert_value_error_or_finite

seeds = st.integers(0, 2**31 - 1)
bad_scalars = [0.0, -1.0, np.nan, np.inf, [0.1, 0.2]]
non_finite = st.sampled_from([np.nan, np.inf, -np.inf])
few_defects = dict(n=ibs.sizes(1, 3), d=ibs.sizes(1, 5), defect=st.sampled_from(["ok"] * 6 + list(ibs.DEFECTS)))


def mostly(good: list, bad: list):
    """Half of the draws from good, half from bad (so the correctness checks run on about half the examples)."""
    return st.one_of(st.sampled_from(good), st.sampled_from(bad))


def _rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / max(np.linalg.norm(b), 1e-300))


def _finite(*arrays) -> bool:
    return all(np.all(np.isfinite(np.asarray(a, dtype=np.float64))) for a in arrays)


def _interpolates(X, b, y, rtol) -> bool:
    """||X b - y|| <= rtol (||X|| ||b|| + ||y||), evaluated on X / max|X| and y / max|y| (no overflow at 1e300)."""
    sx, sy = np.abs(X).max(), max(np.abs(y).max(), 1e-300)
    Xn, bn, yn = X / sx, b * (sx / sy), y / sy
    scale = np.linalg.norm(Xn, 2) * np.linalg.norm(bn) + np.linalg.norm(yn)
    return bool(np.linalg.norm(Xn @ bn - yn) <= rtol * scale)


# ---------------------------------------------------------------- commuting sensing

@st.composite
def sensing(draw):
    """(As, y, kind): commuting sensing (verify.testing SensingProblem: A_i = Q diag(a_i) Q^T, y = <A_i, W*> for a
    PSD W*) with A and y scaled by 1e-6, 1 or 1e3, or a corruption of it."""
    p = draw(ibs.random_problems(P.SensingProblem, d=st.integers(1, 4), m=st.integers(1, 3), seed=seeds))
    scale = draw(st.sampled_from([1e-6, 1.0, 1e3]))
    A, y, d = p.As * scale, p.y * scale, p.d
    rng = np.random.default_rng(draw(seeds))
    kind = draw(mostly(["ok"], ["nan_A", "nan_y", "shape", "non_commuting", "non_symmetric", "empty", "inconsistent",
                                "y_scale"]))
    if kind == "nan_A":
        A[0, 0, 0] = draw(non_finite)
    elif kind == "nan_y":
        y[-1] = draw(non_finite)
    elif kind == "shape":
        y = np.append(y, 1.0)
    elif kind == "non_commuting" and d >= 2:
        B = rng.standard_normal((d, d))
        A = np.concatenate([A, (B + B.T)[None]])
        y = np.append(y, 1.0)
    elif kind == "non_symmetric" and d >= 2:
        A[0, 0, 1] += 1.0
    elif kind == "empty":
        A, y = A[:0], y[:0]
    elif kind == "inconsistent":
        A, y = np.concatenate([A, A[:1]]), np.append(y, y[0] + 1.0)
    elif kind == "y_scale":
        y = y * draw(st.sampled_from([1e-12, 1e6]))
    return A, y, kind


def _psd(W, rtol=1e-10) -> bool:
    ev = np.linalg.eigvalsh((W + W.T) / 2)
    return bool(np.allclose(W, W.T, rtol=0, atol=rtol * max(np.abs(W).max(), 1e-300))
                and ev[0] >= -rtol * max(np.abs(ev).max(), 1e-300))


@given(problem=sensing())
def test_commuting_basis_raises_or_jointly_diagonalizes(problem):
    A, _, kind = problem
    out = assert_value_error_or_finite(commuting_basis, A)
    if kind in ("nan_A", "empty") or (kind in ("non_commuting", "non_symmetric") and A.shape[-1] >= 2):
        assert out is None
    if out is not None:
        Q, a = out.Q, out.a
        assert np.allclose(Q.T @ Q, np.eye(Q.shape[0]), atol=1e-12)
        # A_i = Q diag(a_i) Q^T up to eigh's backward error, ~1e-15 relative at d <= 4
        recon = np.einsum("ij,mj,kj->mik", Q, a, Q)
        assert np.abs(recon - A).max() <= 1e-10 * np.abs(A).max()


@given(problem=sensing(), alpha=mostly([1e-3, 0.1, 1.0, 10.0], bad_scalars))
def test_commuting_limit_raises_or_returns_a_psd_interpolator(problem, alpha):
    A, y, kind = problem
    out = assert_value_error_or_finite(commuting_limit, A, y, alpha)
    valid_alpha = np.ndim(alpha) == 0 and np.isfinite(alpha) and alpha > 0
    if kind == "ok" and valid_alpha:
        assert out is not None
    if kind in ("nan_A", "nan_y", "shape", "empty", "inconsistent") or not valid_alpha:
        assert out is None
    if out is not None:
        assert _psd(out.W)
        if out.status == "converged":   # the dual Newton stops at ||a lam - y|| <= 1e-14 ||y||
            assert out.residual <= 1e-12
            meas = np.einsum("mij,ij->m", A, out.W)
            assert np.linalg.norm(meas - y) <= 1e-9 * (np.linalg.norm(y) + np.abs(A).max() * np.abs(out.W).sum())


@given(problem=sensing(),
       t_eval=mostly([[0.0, 0.5], [1.0]], [[], [np.nan], [-1.0], [[1.0]], [2.0, 1.0], [0.0], [np.inf], 3.0]))
def test_commuting_trajectory_raises_or_stays_psd(problem, t_eval):
    A, y, kind = problem
    out = assert_value_error_or_finite(commuting_trajectory, A, y, 0.5, t_eval)
    good_t = t_eval in ([0.0, 0.5], [1.0])
    if kind in ("ok", "y_scale") and good_t:
        assert out is not None
    if not good_t:
        assert out is None
    if out is not None:
        if out.converged:
            assert out.W.shape == (len(t_eval), A.shape[1], A.shape[1]) and np.array_equal(out.t, t_eval)
        assert all(_psd(Wt) for Wt in out.W) and np.all(out.lam >= 0)


@given(problem=sensing())
def test_min_trace_commuting_raises_or_certifies_optimality(problem):
    A, y, kind = problem
    out = assert_value_error_or_finite(min_trace_commuting, A, y)
    if kind in ("ok", "y_scale"):
        assert out is not None
    if out is not None:
        W, lam, s = out.W, out.lam, out.s
        a = commuting_basis(A).a
        scale = np.linalg.norm(y) + np.abs(a).max() * lam.sum()
        # HiGHS feasibility and optimality tolerances 1e-7 on the rescaled LP, with margin
        assert np.all(lam >= -1e-9 * lam.sum()) and np.linalg.norm(a @ lam - y) <= 1e-6 * scale
        assert np.all(s <= 1 + 1e-6) and np.all(np.abs(s[lam > 1e-6 * lam.max()] - 1) <= 1e-6)
        assert np.trace(W) == pytest.approx(lam.sum(), rel=1e-10, abs=1e-300)
        assert out.converged and out.residual == pytest.approx(np.linalg.norm(a @ lam - y) / np.linalg.norm(y))


@pytest.mark.parametrize("fn", [commuting_limit, commuting_trajectory, min_trace_commuting])
def test_commuting_predictors_reject_non_commuting_sensing(fn):
    A = np.stack([np.diag([1.0, 2.0]), np.array([[0.0, 1.0], [1.0, 0.0]])])
    args = {commuting_limit: (0.1,), commuting_trajectory: (0.1, [1.0]), min_trace_commuting: ()}[fn]
    with pytest.raises(ValueError, match="commut"):
        fn(A, np.ones(2), *args)


@pytest.mark.parametrize("fn, extra", [(commuting_limit, (0.1,)), (min_trace_commuting, ()), (min_nuclear_norm, ()),
                                       (min_nuclear_norm, (True,))])
def test_sensing_predictors_reject_measurements_inconsistent_with_any_matrix(fn, extra):
    A = np.stack([np.eye(2), np.eye(2)])
    with pytest.raises(ValueError, match="inconsistent"):
        fn(A, np.array([1.0, 2.0]), *extra)


@pytest.mark.parametrize("fn, extra", [(min_sharpness, ()), (gf_path_sharpness, (0.5,))])
def test_interpolator_predictors_reject_y_outside_the_range_of_X(fn, extra):
    with pytest.raises(ValueError, match="inconsistent"):
        fn(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([1.0, 2.0]), *extra)


def test_min_trace_commuting_is_exact_for_tiny_measurements():
    A = np.stack([np.diag([1.0, 2.0, 3.0]), np.diag([1.0, 0.0, 1.0])])
    lam_true = np.array([0.0, 0.5, 0.1])
    for s in (1e-12, 1.0, 1e6):   # HiGHS's absolute tolerance 1e-7 once returned lam = 0 at s = 1e-12
        W = min_trace_commuting(A, s * np.einsum("mii,i->m", A, lam_true)).W
        assert _rel(W, s * np.diag(lam_true)) <= 1e-8


# ---------------------------------------------------------------- nuclear norm, effective rank

@st.composite
def matrices(draw):
    rng = np.random.default_rng(draw(seeds))
    W = rng.standard_normal((draw(st.integers(1, 4)), draw(st.integers(1, 4)))) * 10.0 ** draw(st.integers(-12, 6))
    kind = draw(mostly(["ok", "ok", "zero", "rank1"], ["nan", "empty", "vector", "stack"]))
    if kind == "nan":
        W[0, -1] = draw(non_finite)
    elif kind == "zero":
        W = 0 * W
    elif kind == "empty":
        W = W[:0]
    elif kind == "vector":
        W = W[0]
    elif kind == "stack":
        W = np.stack([W, W])
    elif kind == "rank1":
        W = np.outer(W[:, 0], W[0])
    return W, kind


@given(matrix=matrices())
def test_nuclear_norm_and_effective_rank_raise_or_match_singular_values(matrix):
    W, kind = matrix
    nuc = assert_value_error_or_finite(nuclear_norm, W)
    er = assert_value_error_or_finite(effective_rank, W)
    if kind in ("ok", "rank1"):
        assert nuc is not None and er is not None
    if kind in ("nan", "empty", "vector", "stack"):
        assert nuc is None and er is None
    if nuc is not None:
        s = np.linalg.svd(W, compute_uv=False)
        assert nuc == pytest.approx(s.sum(), rel=1e-12, abs=0) and nuc >= s[0] * (1 - 1e-12)
    if er is not None:
        s = np.linalg.svd(W, compute_uv=False)
        p = s[s > 0] / s.sum()
        assert er == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-12)   # Roy & Vetterli 2007
        if kind == "rank1":   # the second singular value is ~1e-16 relative: exp(entropy) = 1 + O(1e-15)
            assert er == pytest.approx(1.0, abs=1e-12)


@st.composite
def measured(draw):
    """(As, y, W*, psd, kind): Gaussian sensing of a rank-1 (PSD when psd) W*, or a corruption."""
    rng = np.random.default_rng(draw(seeds))
    d, psd = draw(st.integers(2, 3)), draw(st.booleans())
    m = draw(st.integers(1, d * d - 1))
    u = rng.standard_normal(d)
    Wt = np.outer(u, u if psd else rng.standard_normal(d))
    A = rng.standard_normal((m, d, d))
    A = (A + A.transpose(0, 2, 1)) / 2 if psd else A
    kind = draw(mostly(["ok", "ok", "scale"], ["nan", "inconsistent", "shape", "rectangular"]))
    if kind == "scale":
        A = A * draw(st.sampled_from([1e-12, 1e6]))
        Wt = Wt * draw(st.sampled_from([1e-12, 1e6]))
    y = np.einsum("mij,ij->m", A, Wt)
    if kind == "nan":
        y[0] = np.nan
    elif kind == "inconsistent":
        A, y = np.concatenate([A, A[:1]]), np.append(y, y[0] + 1.0)
    elif kind == "shape":
        y = y[1:]
    elif kind == "rectangular":
        A = A[:, :, 1:]
    return A, y, Wt, psd, kind


@given(problem=measured())
def test_min_nuclear_norm_raises_or_fits_with_at_most_the_planted_norm(problem):
    A, y, Wt, psd, kind = problem
    out = assert_value_error_or_finite(min_nuclear_norm, A, y, psd=psd)
    if kind in ("ok", "scale"):
        assert out is not None
    if kind in ("nan", "inconsistent", "shape", "rectangular"):
        assert out is None
    if out is not None:
        W = out.W
        assert out.converged   # status "inaccurate (...)" would flag a missed residual
        # Clarabel: feasibility and gap tolerances 1e-8 on the rescaled problem; W* is feasible, so
        # ||W||_* <= ||W*||_* up to that tolerance
        assert _rel(np.einsum("mij,ij->m", A, W), y) <= 1e-6 and out.residual <= 1e-6
        assert nuclear_norm(W) <= nuclear_norm(Wt) * (1 + 1e-6)
        if psd:
            assert _psd(W, rtol=1e-7)


@st.composite
def completion(draw):
    rng = np.random.default_rng(draw(seeds))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)))
    M = rng.standard_normal(shape) * 10.0 ** draw(st.integers(-6, 6))
    mask = rng.random(shape) < 0.6
    mask.flat[0] = True
    lam = draw(st.sampled_from([0.05, 0.3, 1.0])) * np.abs(M).max()
    kind = draw(mostly(["ok"], ["nan", "mask_values", "mask_none", "mask_shape", "vector"] + bad_scalars))
    if not isinstance(kind, str):
        lam = kind
    elif kind == "nan":
        M[-1, -1] = np.nan
    elif kind == "mask_values":
        mask = np.where(mask, 0.5, 0.0)
    elif kind == "mask_none":
        mask = np.zeros(shape, dtype=bool)
    elif kind == "mask_shape":
        mask = mask[:, :-1]
    elif kind == "vector":
        M, mask = M[0], mask[0]
    return mask, M, lam, kind


@given(problem=completion())
def test_svt_completion_raises_or_agrees_with_cvxpy(problem):
    mask, M, lam, kind = problem
    svt = assert_value_error_or_finite(nuclear_regularized_completion, mask, M, lam, tol=1e-10, max_iter=300)
    cvx = assert_value_error_or_finite(nuclear_regularized_cvxpy, mask, M, lam)
    valid = kind == "ok"
    assert (svt is not None) == valid and (cvx is not None) == valid
    if valid:
        f0 = 0.5 * np.sum((mask * M) ** 2)
        # accepted iterates never increase the objective and the first prox step from W = 0 decreases it;
        # nothing beats the optimum, which Clarabel meets to its gap tolerances, 1e-8 absolute or relative on the
        # problem rescaled by sm = pow2_scale(max|M|) (objective units sm^2), with margin 10
        gap = 1e-7 * max(f0, pow2_scale(np.abs(M).max()) ** 2)
        assert svt.objective <= f0 * (1 + 1e-12)
        assert svt.objective >= cvx.objective - gap
        if svt.status == "converged":
            assert svt.objective <= cvx.objective + gap
        assert svt.status in ("converged", "max_iter") and svt.iterations <= 300


# ---------------------------------------------------------------- deep factorization

@given(matrix=matrices(), N=mostly([2, 3], [1, 2.5, np.nan, np.inf, "3"]))
def test_balanced_factors_raise_or_are_balanced_with_product_W0(matrix, N):
    W0, kind = matrix
    W0 = W0[:min(W0.shape), :min(W0.shape)] if kind in ("ok", "rank1", "zero") else W0
    out = assert_value_error_or_finite(balanced_factors, W0, N, np.random.default_rng(0))
    if kind in ("ok", "rank1", "zero") and N in (2, 3):
        assert out is not None
    if out is not None:
        assert len(out) == N and balance_gap(out) <= 1e-12
        assert np.abs(require_balanced(out) - W0).max() <= 1e-12 * max(np.abs(W0).max(), 1e-300)


@pytest.mark.parametrize("factors", [
    [np.eye(2), 2 * np.eye(2)],
    [np.diag([1.0, 2.0]), np.diag([1.0, 3.0]), np.diag([1.0, 2.0])],
    [np.array([[1.0, 1.0], [0.0, 1.0]]), np.eye(2)],
])
def test_require_balanced_rejects_unbalanced_factors(factors):
    with pytest.raises(ValueError, match="balance"):
        require_balanced(factors)
    with pytest.raises(ValueError, match="balance"):
        integrate_end_to_end(factors, lambda W: W, [1.0])


@pytest.mark.parametrize("factors", [[], [np.eye(2)], [np.ones((2, 3)), np.ones((2, 2))], [np.eye(2) * np.nan] * 2,
                                     [np.ones(2), np.ones(2)], [np.eye(2) * 1e160] * 3])
def test_require_balanced_rejects_malformed_factors(factors):
    with pytest.raises(ValueError, match="factor"):
        require_balanced(factors)


@given(seed=seeds, bad=mostly(["none"], ["t_empty", "t_nan", "t_negative", "t_decreasing", "t_2d", "nan", "shape",
                                         "not_callable"]))
def test_integrate_end_to_end_raises_or_tracks_the_singular_values(seed, bad):
    rng = np.random.default_rng(seed)
    t_eval = {"t_empty": [], "t_nan": [np.nan], "t_negative": [-1.0], "t_decreasing": [2.0, 1.0],
              "t_2d": [[1.0]]}.get(bad, [0.0, 0.5] if seed % 2 else [0.3])
    grad_kind = bad if bad in ("nan", "shape", "not_callable") else "quadratic"
    d = 2
    M = rng.standard_normal((d, d))
    grad = {"quadratic": lambda W: W - M, "nan": lambda W: W * np.nan, "shape": lambda W: W[:1],
            "not_callable": 1.0}[grad_kind]
    fac = balanced_factors(0.5 * rng.standard_normal((d, d)), 2, rng)
    out = assert_value_error_or_finite(integrate_end_to_end, fac, grad, t_eval, rtol=1e-9, atol=1e-11)
    valid = grad_kind == "quadratic" and t_eval in ([0.0, 0.5], [0.3])
    assert (out is not None) == valid
    if valid:
        assert out.status == "ok" and out.W.shape == (len(t_eval), d, d)
        # the singular-value ODE and the SVD of the integrated W agree to the integrator's rtol (1e-9), with margin
        sv = np.linalg.svd(out.W, compute_uv=False)
        assert np.abs(np.sort(out.sigma, axis=1) - np.sort(sv, axis=1)).max() <= 1e-6 * max(1.0, sv.max())


@given(seed=seeds, kind=mostly(["ok"], ["singular", "indefinite", "nonsymmetric", "rectangular", "nan", "huge"]),
       p=mostly([0.0, 0.5, 1 / 3, 2.0, -0.5], [np.nan, [0.5, 1.0]]))
def test_psd_power_raises_or_is_a_psd_power(seed, kind, p):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((3, 3))
    S = B @ B.T + 0.1 * np.eye(3)
    if kind == "singular":
        S = np.outer(B[0], B[0])
    elif kind == "indefinite":
        S = B + B.T - 10 * np.eye(3)
    elif kind == "nonsymmetric":
        S = S + np.triu(np.ones((3, 3)), 1)
    elif kind == "rectangular":
        S = S[:2]
    elif kind == "nan":
        S[0, 0] = np.nan
    elif kind == "huge":
        S = S * 1e200
    out = assert_value_error_or_finite(psd_power, S, p)
    finite_p = np.ndim(p) == 0 and np.isfinite(p)
    if kind == "ok" and finite_p:
        assert out is not None
    if kind in ("indefinite", "nonsymmetric", "rectangular", "nan") or not finite_p:
        assert out is None
    if out is not None:
        assert _psd(out, rtol=1e-9)
        # S^p S^(1-p) = S and S^2 = S S; eigh's backward error is ~1e-15 ||S|| per factor (cond(S) <= ~1e3 for S^-1)
        if 0 <= p <= 1:
            assert np.abs(out @ psd_power(S, 1 - p) - S).max() <= 1e-10 * np.abs(S).max()
        elif p == 2:
            assert np.abs(out - S @ S).max() <= 1e-10 * np.abs(S @ S).max()


@given(seed=seeds, kind=mostly(["ok", "negative_det"], ["det_zero", "equal_singular_values", "nan", "tiny", "3x3",
                                                        "N_1", "N_2.5", "t_empty", "t_negative", "t_inf"]))
def test_integrate_svd2_raises_or_keeps_the_sign_of_det(seed, kind):
    rng = np.random.default_rng(seed)
    N = {"N_1": 1, "N_2.5": 2.5}.get(kind, 2)
    t_eval = {"t_empty": [], "t_negative": [-1.0], "t_inf": [np.inf]}.get(kind, [0.2, 0.5] if seed % 2 else [0.5])
    W0 = rng.standard_normal((2, 2))
    W0 = W0 @ np.diag([1.0, np.sign(np.linalg.det(W0))])   # det W0 > 0
    if kind == "negative_det":
        W0 = W0 @ np.diag([1.0, -1.0])
    elif kind == "det_zero":
        W0[1] = 2 * W0[0]
    elif kind == "equal_singular_values":
        W0 = 0.7 * np.linalg.qr(W0)[0]
    elif kind == "nan":
        W0[0, 1] = np.nan
    elif kind == "tiny":
        W0 = W0 * 1e-200
    elif kind == "3x3":
        W0 = np.eye(3)
    M = rng.standard_normal((2, 2))
    out = assert_value_error_or_finite(integrate_svd2, W0, lambda W: W - M, N, t_eval, rtol=1e-8, atol=1e-10)
    valid = kind in ("ok", "negative_det") and N == 2 and t_eval in ([0.2, 0.5], [0.5])
    if valid:
        assert out is not None
    if kind in ("det_zero", "equal_singular_values", "nan", "3x3") or N != 2 or t_eval in ([], [-1.0], [np.inf]):
        assert out is None
    if out is not None and out.status == "ok":
        dets = np.linalg.det(out.W)
        assert np.all(np.sign(dets) == out.sign_det) and out.sign_det == np.sign(np.linalg.det(W0))
        assert np.allclose(out.logabsdet, np.log(np.abs(dets)), rtol=0, atol=1e-9)


# ---------------------------------------------------------------- two-layer ReLU

@st.composite
def relu_net(draw, corrupt: bool = True):
    """(W, A, b, c, kind) of a small two-layer net, or (corrupt) a corruption of it."""
    rng = np.random.default_rng(draw(seeds))
    m, d, k = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    W, A = rng.standard_normal((m, d)), rng.standard_normal((k, m))
    b, c = rng.standard_normal(m), rng.standard_normal(k)
    kind = draw(mostly(["ok"], ["nan_W", "nan_A", "shape_A", "shape_b", "no_outputs", "empty_W"])) if corrupt else "ok"
    if kind == "nan_W":
        W[0, 0] = np.nan
    elif kind == "nan_A":
        A[0, 0] = np.inf
    elif kind == "shape_A":
        A = A[:, 1:]
    elif kind == "shape_b":
        b = np.append(b, 0.0)
    elif kind == "no_outputs":
        A = A[:0]
    elif kind == "empty_W":
        W = W[:, :0]
    return W, A, b, c, kind


@given(net=relu_net(),
       x_kind=mostly(["ok", "point"], ["nan", "wrong_d", "empty", "stack", "huge"]),
       scale=st.sampled_from([1e-12, 1.0, 1e6]))
def test_two_layer_forward_raises_or_is_positively_homogeneous(net, x_kind, scale):
    W, A, b, c, kind = net
    model = assert_value_error_or_finite(two_layer, W, A, b, c)
    assert (model is not None) == (kind == "ok")
    if model is None:
        return
    d = W.shape[1]
    X = np.random.default_rng(1).standard_normal((3, d)) * scale
    X = {"ok": X, "point": X[0], "nan": np.where(X > 0, np.nan, X), "wrong_d": X[:, :0] if d == 1 else X[:, 1:],
         "empty": X[:0], "stack": X[None], "huge": X * 1e306}[x_kind]
    out = assert_value_error_or_finite(forward, model, X)
    if x_kind in ("ok", "point"):
        assert out is not None and out.shape == (np.atleast_2d(X).shape[0], A.shape[0])
        # f(2x) - c = 2 (f(x) - c) without biases: positive homogeneity of relu, exact up to rounding
        homo = forward(two_layer(W, A), 2 * np.atleast_2d(X))
        assert np.allclose(homo, 2 * forward(two_layer(W, A), X), rtol=1e-12, atol=1e-300)
    if x_kind in ("nan", "wrong_d", "empty", "stack"):
        assert out is None
    with pytest.raises(ValueError, match="TwoLayer"):
        forward((W, A), X)


@given(net=relu_net(corrupt=False), seg=mostly(["ok"], ["same", "nan", "short", "matrix", "tiny", "huge"]),
       scale=st.sampled_from([1e-12, 1e-3, 1.0, 1e6]))
def test_segment_profile_and_measures_raise_or_match_forward(net, seg, scale):
    W, A, b, c, _ = net
    model = two_layer(W, A, b, c)
    d = W.shape[1]
    rng = np.random.default_rng(2)
    x0, x1 = rng.standard_normal(d) * scale, rng.standard_normal(d) * scale
    x0, x1 = {"ok": (x0, x1), "same": (x0, x0.copy()), "nan": (x0 * np.nan, x1), "short": (x0[:-1], x1),
              "matrix": (x0[None], x1[None]), "tiny": (x0 * 1e-300, x1 * 1e-300),
              "huge": (x0 * 1e305, x1 * 1e305)}[seg]
    prof = assert_value_error_or_finite(segment_profile, model, x0, x1)
    meas = assert_value_error_or_finite(segment_measures, model, x0, x1)
    if seg == "ok":
        assert prof is not None and meas is not None
    if seg in ("same", "nan", "short", "matrix"):
        assert prof is None and meas is None
    if prof is not None:
        t = np.linspace(0.0, 1.0, 7)
        exact = forward(model, x0[None] + t[:, None] * (x1 - x0)[None])
        # piecewise-linear interpolation between exact kinks reproduces f up to rounding in the kink positions
        assert np.abs(prof(t) - exact).max() <= 1e-9 * max(np.abs(exact).max(), np.abs(prof.values).max(), 1e-300)
    if meas is not None:
        assert meas["kappa"] >= 0 and meas["chord_l2"] >= 0 and np.all(meas["deflection"] >= 0)


@given(theta=st.sampled_from([1e-8, 1e-3, 0.05, 1.0, 3.0, np.pi - 1e-9]), r1=st.sampled_from([1.0, 2.5, 1e-6, 1e6]),
       sa=st.sampled_from([1.0, 0.3]), d=st.sampled_from([2, 5]), t=st.sampled_from([0.0, 0.3, 1.0]),
       bad=mostly([None], [("theta", 0.0), ("theta", np.pi), ("theta", np.nan), ("theta", -1.0), ("r1", 0.0),
                           ("r1", np.nan), ("sa", 0.0), ("sa", -1.0), ("sa", np.inf), ("d", 1), ("d", 2.5),
                           ("d", np.nan), ("d", np.inf), ("t", -0.1), ("t", 1.5), ("t", np.nan)]))
def test_init_closed_forms_raise_or_are_nonnegative_and_decompose(theta, r1, sa, d, t, bad):
    args = {**dict(theta=theta, r1=r1, sa=sa, d=d, t=t), **dict([bad] if bad else [])}
    theta, r1, sa, d, t = (args[k] for k in ("theta", "r1", "sa", "d", "t"))
    out = assert_value_error_or_finite(init_closed_forms, theta, 1.0, r1, sa, 1.0, d, t)
    valid = (np.isfinite(theta) and 0 < theta < np.pi and np.isfinite(r1) and r1 > 0 and np.isfinite(sa) and sa > 0
             and d in (2, 5) and np.isfinite(t) and 0 <= t <= 1)
    assert (out is not None) == valid
    if valid:
        s2 = sa**2
        assert out["kinks_per_unit"] == pytest.approx(theta / np.pi, rel=1e-12)
        assert out["gap_sq"] == pytest.approx(s2 * d * theta / np.pi, rel=1e-12)
        # along + across = total; the float64 forms (theta >= 0.1) cancel to ~1e-13 relative at these r1
        assert out["gap_along_var"] + out["gap_across_sq"] == pytest.approx(out["gap_sq"], rel=1e-10)
        for key in ("gap_along_var", "gap_across_sq", "gap_normal_var", "chord_var"):
            assert out[key] >= -1e-12 * s2 * (1 + r1) ** 2, key


def test_init_closed_forms_are_accurate_at_small_angles():
    # theta -> 0 with r0 = r1: the float64 forms were 0/0 (NaN) at 1e-8 and negative (-4e-13) for a square at 1e-4
    for theta in (1e-8, 1e-4):
        cf = init_closed_forms(theta, 1.0, 1.0, 1.0, 1.0, 3, 0.3)
        assert all(np.isfinite(v) and v >= 0 for v in cf.values())
        # sympy series of the closed form at r0 = r1 = sa = sw = 1: theta^3 / (6 pi) - theta^5 / (120 pi) + ...
        assert cf["gap_normal_var"] == pytest.approx(theta**3 / (6 * np.pi), rel=1e-8)


# ---------------------------------------------------------------- linear predictors

@given(problem=ibs.regression_inputs(**few_defects), depth=st.sampled_from([2, 3]),
       bad=mostly([None], [("depth", 1), ("depth", 2.5), ("depth", np.nan), ("depth", np.inf), ("w0_kind", "zero"),
                           ("w0_kind", "nan"), ("w0_kind", "short")]))
def test_linear_predictors_raise_or_interpolate_from_the_row_space(problem, depth, bad):
    X, y, kind = problem
    args = {**dict(depth=depth, w0_kind="ok"), **dict([bad] if bad else [])}
    depth, w0_kind = args["depth"], args["w0_kind"]
    d = X.shape[1]
    w0 = np.random.default_rng(3).standard_normal(max(d, 1))[:d]
    w0 = {"ok": w0, "zero": 0 * w0, "nan": w0 * np.nan, "short": w0[:-1]}[w0_kind]
    invalid = kind in ("shape", "empty") or not _finite(X, y)
    full_rank = kind == "ok" and X.shape[0] <= d
    pinv = assert_value_error_or_finite(pinv_solution, X, y)
    one = assert_value_error_or_finite(one_layer_limit, X, y, w0)
    kap = assert_value_error_or_finite(kappa, X, y, w0, depth)
    deep = assert_value_error_or_finite(deep_limit, X, y, w0, depth)
    if full_rank:
        assert pinv is not None
        assert (one is not None) == (w0_kind in ("ok", "zero"))
        assert (kap is not None) == (deep is not None) == (w0_kind == "ok" and depth in (2, 3))
    if invalid or (kind == "rank" and X.shape[0] >= 2):
        assert pinv is None and one is None and kap is None and deep is None
    tol = 1e-9  # QR-based X^+: backward error ~ d eps ||X|| ||b||, independent of cond(X)
    for p in (pinv, one, deep):
        if p is not None:
            assert _interpolates(X, p.b, y, tol) and p.converged
    if pinv is not None:
        # X^+ y lies in the row space: no component along null(X); the computed row space itself is only accurate
        # to a subspace angle ~ eps cond(X) (1e-8 at cond 1e8)
        null = np.linalg.svd(X)[2][X.shape[0]:]
        angle_tol = 1e-12 + 10 * np.finfo(float).eps * np.linalg.cond(X)
        assert np.linalg.norm(null @ pinv.b) <= angle_tol * np.linalg.norm(pinv.b)
    if kap is not None:
        assert kap.value > 0 and kap.residual <= 1e-12


def test_pinv_solution_is_accurate_at_condition_number_1e8():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((2, 4))
    X[1] = X[0] + 1e-8 * X[1]
    y = rng.standard_normal(2)
    ref = np.linalg.lstsq(X, y, rcond=None)[0]
    # X^T (X X^T)^{-1} via the normal equations lost every digit here (16% residual); via QR: cond * eps
    assert _rel(pinv_solution(X, y).b, ref) <= 1e-6


# ---------------------------------------------------------------- saddle-to-saddle, NNLS

@given(problem=ibs.regression_inputs(**few_defects),
       max_jumps=mostly([None, None, 0, 3], [-1, 1.5, np.nan]))
def test_saddle_to_saddle_raises_or_ends_at_a_min_l1_point(problem, max_jumps):
    X, y, kind = problem
    out = assert_value_error_or_finite(saddle_to_saddle, X, y, max_jumps=max_jumps)
    if kind == "ok" and max_jumps in (None, 0, 3):
        assert out is not None
    if kind in ("shape", "empty") or not _finite(X, y) or max_jumps in (-1, 1.5) or max_jumps != max_jumps:
        assert out is None
    if out is not None:
        assert np.all(np.diff(out.times) >= 0)
        assert np.all(np.abs(out.duals) <= 1 + 1e-8)
        # the saddles' losses decrease (exact arithmetic); where rounding breaks that, the path ends 'stalled'
        assert np.all(np.diff(out.losses) <= 1e-9 * max(out.losses[0], 1e-300))
        consistent = X.shape[0] <= X.shape[1] and np.linalg.matrix_rank(X) == X.shape[0]
        if out.status == "converged" and consistent and kind == "ok":
            assert l1_kkt_residual(X, y, out.b, out.duals[-1]) <= 1e-8


@given(seed=seeds, kind=mostly(["ok", "duplicate"], ["nan", "vector", "mismatch", "no_columns"]),
       scale=st.sampled_from([1e-12, 1.0, 1e6]), tol=mostly([0.0], [-1.0, np.nan]))
def test_nnls_raises_or_satisfies_kkt(seed, kind, scale, tol):
    rng = np.random.default_rng(seed)
    A, y = rng.standard_normal((4, 3)) * scale, rng.standard_normal(4)
    A = {"ok": A, "duplicate": np.c_[A, A[:, :1]], "nan": np.where(A > 0, np.nan, A), "vector": A[0],
         "mismatch": A[:3], "no_columns": A[:, :0]}[kind]
    z = assert_value_error_or_finite(nnls, A, y, tol=tol)
    assert (z is not None) == (kind in ("ok", "duplicate", "no_columns") and tol == 0.0)
    if z is not None and z.size:
        w = A.T @ (y - A @ z)
        scale_w = np.linalg.norm(A) * (np.linalg.norm(y) + np.linalg.norm(A) * np.linalg.norm(z))
        # Lawson-Hanson KKT: z >= 0, w <= 0, w_i = 0 on the support, up to least-squares rounding
        assert np.all(z >= 0) and np.all(w <= 1e-10 * scale_w)
        assert np.all(np.abs(w[z > 0]) <= 1e-10 * scale_w)


# ---------------------------------------------------------------- sharpness

@given(seed=seeds, kind=mostly(["pm", "uv", "shared"], ["xx"]),
       bad=mostly(["none"], ["nan", "wrong_d", "empty", "huge", "depth"]))
def test_sharpness_raises_or_equals_the_top_hessian_eigenvalue_at_interpolators(seed, kind, bad):
    rng = np.random.default_rng(seed)
    n, d = 2, 3
    X = rng.standard_normal((n, d))
    P = rng.standard_normal((2, 1 if kind == "shared" else 2, d))
    b = P[:, 0] ** 2 if kind == "shared" else P[:, 0] * P[:, 1] if kind == "uv" else P[:, 0] ** 2 - P[:, 1] ** 2
    y = X @ b[0]
    P, depth = {"none": (P, 2), "nan": (np.where(P > 1, np.nan, P), 2), "wrong_d": (P[..., 1:], 2),
                "empty": (P[:0], 2), "huge": (P * 1e200, 2), "depth": (P, 2.5)}[bad]
    s = assert_value_error_or_finite(sharpness_interp, kind, P, X, depth=depth)
    H = assert_value_error_or_finite(hessian_full, kind, P[:1], X, y, depth=depth)
    valid = kind != "xx" and (bad == "none" or (bad == "nan" and np.all(np.isfinite(P))))
    assert (s is not None) == valid and (H is not None) == valid
    if valid:
        # at an interpolator the gradient term vanishes: top eigenvalue of J^T H J = lambda_max(X diag(w) X^T / n)
        assert np.allclose(H[0], H[0].T, rtol=0, atol=1e-12 * np.abs(H).max())
        assert np.linalg.eigvalsh(H[0])[-1] == pytest.approx(s[0], rel=1e-10)


@given(problem=ibs.regression_inputs(n=ibs.sizes(1, 2), d=ibs.sizes(1, 4), defect=few_defects["defect"]))
def test_min_sharpness_raises_or_certifies_a_small_gap(problem):
    X, y, kind = problem
    out = assert_value_error_or_finite(min_sharpness, X, y)
    if kind == "ok" and X.shape[0] <= X.shape[1]:
        assert out is not None and out.status in ("optimal", "optimal_inaccurate")
    if out is not None:
        # 1e-8, or the float64 floor of ||X b - y|| (100 eps ||X|| ||b||) where cond(X) ~ 1e8 makes b huge
        floor = 100 * np.finfo(float).eps * np.linalg.norm(X, 2) * np.linalg.norm(out.b) / np.linalg.norm(y)
        assert out.residual <= max(1e-8, floor) and out.value >= out.lower - 1e-8 * abs(out.value)
    if out is not None and out.converged:
        # Clarabel at eps = 1e-10 on the rescaled SDPs: a larger certified gap must be reported in the status
        assert out.gap <= 1e-6 * abs(out.value)
        if X.shape[0] == 1:   # n = 1: closed form |y| min_i |x_i| over x_i != 0
            val = min_sharpness_n1(X[0], y[0]).value
            assert out.value == pytest.approx(val, rel=1e-6, abs=1e-12 * np.abs(X).max() * abs(y[0]))


@pytest.mark.parametrize("x, y, name", [(np.zeros(3), 1.0, "x is all zeros"), ([np.nan, 1.0], 1.0, "x"),
                                        ([1.0, 2.0], np.nan, "y must"), ([1.0, 2.0], [1.0, 2.0], "y must"),
                                        (np.ones((2, 2)), 1.0, "x"), ([], 1.0, "x"), ([1e-320, 0.0], 1.0, "rescale x")])
def test_min_sharpness_n1_rejects_bad_inputs_naming_them(x, y, name):
    with pytest.raises(ValueError, match=name):
        min_sharpness_n1(x, y)


@given(seed=seeds, alpha=st.sampled_from([0.3, 1.0, 100.0]), kind=st.sampled_from(["uv", "pm"]),
       bad=mostly([None], [("alpha", v) for v in bad_scalars] + [("kind", "xx"), ("kind", "shared"), ("t_max", 0.0),
                                                                ("t_max", np.nan), ("points", 1.5), ("points", -1)]))
def test_gf_path_sharpness_raises_or_bounds_the_limit(seed, alpha, kind, bad):
    args = {**dict(alpha=alpha, kind=kind, t_max=20.0, points=8), **dict([bad] if bad else [])}
    alpha, kind, t_max, points = (args[k] for k in ("alpha", "kind", "t_max", "points"))
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((2, 3)), rng.standard_normal(2)
    out = assert_value_error_or_finite(gf_path_sharpness, X, y, alpha, kind=kind, t_max=t_max, points=points, rtol=1e-8)
    valid = bad is None
    assert (out is not None) == valid
    if valid:
        # alpha = 100 hung (Radau never met atol on the cancelling product u v); the path max bounds the limit
        assert out.S_path_max >= out.S_limit * (1 - 1e-12) and out.eta_c_path <= out.eta_c_limit
        assert out.S.shape == (points + 1,) and np.all(out.S >= 0)


@given(seed=seeds, kind=st.sampled_from(["uv", "pm"]), scale=st.sampled_from([1e-12, 1e-2, 1.0, 1e6]),
       bad=mostly([None], [("alpha_sq", v) for v in (0.0, -1.0, np.nan, np.inf)] +
                  [("alpha_sq", "short"), ("theta", "nan"), ("theta", "short"), ("kind", "shared")]))
def test_gfs_sharpness_raises_or_is_the_sharpness_of_a_feasible_gf_solution(seed, kind, scale, bad):
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((2, 4)), rng.standard_normal(2)
    args = dict(alpha_sq=scale * rng.uniform(0.5, 2, 4), theta=rng.standard_normal(4), kind=kind)
    if bad:
        key, v = bad
        if v == "short":
            v = args[key][:3]
        elif v == "nan":
            v = np.where(args[key] > 0, np.nan, args[key])
        args[key] = v
    out = assert_value_error_or_finite(gfs_sharpness, args["kind"], X, y, args["alpha_sq"], args["theta"])
    assert (out is not None) == (bad is None or (bad == ("theta", "nan") and np.all(np.isfinite(args["theta"]))))
    if out is not None:
        assert out.sharpness > 0 and (out.residual <= 1e-10 or not out.converged)
