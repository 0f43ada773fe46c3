"""CP tensor factorization: the component-norm ODE on drawn small tensors, bounds, trainer, bad inputs ('ci')."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from numerics.tensor import (as_factors, balance, blowup_time, component_inner, component_norms, effective_cp_rank,
                             full_tensor, gammas, norm_rate, norm_rate_bounds, norm_rate_exact, unbalancedness)
from theory.tensor import cp_norms
from verify.train.flow import integrate
from verify.train.tensor import CPLoss, GroupRMSprop, cp_rhs, gd, group_rmsprop, make_completion

seeds = st.integers(0, 2**31 - 1)


def _gf_direction(F, Gt):
    """dF/dt = -d<Gt, W>/dF for one factorization (N, d, R), by autograd."""
    Ft = torch.tensor(F, requires_grad=True)
    N = F.shape[0]
    letters = "abcd"[:N]
    W = torch.einsum(",".join(f"{c}z" for c in letters) + "->" + letters, *Ft)
    (torch.tensor(Gt) * W).sum().backward()
    return -Ft.grad.numpy()


def _norm_derivative(F, dF):
    """d/dt ||W_r|| along dF, by autograd of prod_n ||w_r^n||."""
    Ft = torch.tensor(F, requires_grad=True)
    norms = Ft.norm(dim=1).prod(dim=0)
    return np.array([torch.autograd.grad(norms[r], Ft, retain_graph=True)[0].flatten() @ torch.tensor(dF).flatten()
                     for r in range(F.shape[2])])


def test_derivation_checks_its_steps():
    d = cp_norms()
    assert len(d.identities) >= 30
    assert any("balanced factors" in i for i in d.identities) and any("homogeneity" in i for i in d.identities)


@given(seeds, st.integers(2, 4), st.integers(2, 3), st.integers(1, 3), st.floats(0.2, 3.0))
def test_norm_ode_on_drawn_tensors(seed, N, d, R, scale):
    """d||W_r||/dt along GF = gamma_r ||W_r||^2 sum_n 1/||w_r^n||^2 for any factors; = N gamma ||W_r||^(2-2/N) balanced."""
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((N, d, R)) * scale
    Gt = rng.standard_normal((d,) * N)
    dF = _gf_direction(F, Gt)
    meas = _norm_derivative(F, dF)
    exact = norm_rate_exact(F, Gt)
    assert np.allclose(meas, exact, rtol=1e-10, atol=1e-12 * np.abs(exact).max())
    Fb = balance(F)
    assert np.allclose(full_tensor(Fb), full_tensor(F), atol=1e-12 * np.abs(full_tensor(F)).max())
    assert np.all(unbalancedness(Fb) <= 1e-12 * np.max(component_norms(Fb) ** (2 / N)))
    meas_b = _norm_derivative(Fb, _gf_direction(Fb, Gt))
    pred_b = norm_rate(component_norms(Fb), gammas(Gt, Fb), N)
    assert np.allclose(meas_b, pred_b, rtol=1e-10, atol=1e-12 * np.abs(pred_b).max())


@given(seeds, st.integers(2, 4), st.floats(1.05, 3.0))
def test_unbalanced_rates_lie_within_the_derived_bounds(seed, N, stretch):
    rng = np.random.default_rng(seed)
    F = balance(rng.standard_normal((N, 3, 2)))
    F[0] *= stretch
    F[-1] /= stretch
    Gt = rng.standard_normal((3,) * N)
    exact = norm_rate_exact(F, Gt)
    lo, hi = norm_rate_bounds(component_norms(F), gammas(Gt, F), unbalancedness(F), N)
    tol = 1e-12 * np.abs(exact).max()
    assert np.all(lo - tol <= exact) and np.all(exact <= hi + tol)


@given(seeds, st.integers(3, 4))
def test_balancedness_differences_conserved_along_trained_runs(seed, N):
    rng = np.random.default_rng(seed)
    prob = make_completion(rng, N, 3, 2, 3**N // 2)
    L = CPLoss(prob)
    F0 = rng.standard_normal((1, N, 3, 2)) * 0.7
    res = integrate(cp_rhs(L, 2), torch.tensor(F0).reshape(1, -1), [5.0, 20.0], rtol=1e-11)
    a0 = np.sum(F0[0] ** 2, axis=1)
    for s in res.states:
        a = np.sum(s.reshape(N, 3, 2) ** 2, axis=1)
        assert np.allclose(a - a[0], a0 - a0[0], atol=1e-9 * a0.max())


@pytest.mark.parametrize("form", ["dense", "gather"])
@pytest.mark.parametrize("N", [2, 3, 4, 5])
def test_cp_loss_gradient_matches_autograd(form, N):
    rng = np.random.default_rng(N)
    prob = make_completion(rng, N, 3, 2, 3**N // 2)
    L = CPLoss(prob, form=form)
    F = torch.tensor(rng.standard_normal((2, N, 3, 5)), requires_grad=True)
    g, loss = L.grad(F.detach())
    L.loss(F).sum().backward()
    assert torch.allclose(g, F.grad, rtol=1e-12, atol=1e-14)
    assert torch.allclose(loss, L.loss(F.detach()), rtol=1e-14, atol=0)


def test_cp_loss_forms_agree_where_the_gather_form_is_slow():
    """Razin et al.'s full size (order 4, 10 per mode, 2000 entries), R = 50: the two gradient forms agree."""
    rng = np.random.default_rng(3)
    prob = make_completion(rng, 4, 10, 5, 2000)
    F = torch.tensor(rng.standard_normal((2, 4, 10, 50)) * 0.3)
    (gd_, ld), (gg, lg) = (CPLoss(prob, form=f).grad(F) for f in ("dense", "gather"))
    assert CPLoss(prob).form == "dense"
    assert torch.allclose(gd_, gg, rtol=1e-11, atol=1e-13 * float(gg.abs().max()))
    assert torch.allclose(ld, lg, rtol=1e-12, atol=0)


def test_gradient_tensor_pairs_with_components_as_gamma():
    rng = np.random.default_rng(1)
    prob = make_completion(rng, 4, 3, 2, 40)
    F = torch.tensor(rng.standard_normal((2, 4, 3, 5)))
    G = CPLoss(prob).grad_tensor(F)
    assert np.allclose(component_inner(G[0], F[0].numpy()),
                       [np.sum(G[0] * full_tensor(F[0, :, :, [r]].numpy())) for r in range(5)])


def test_gd_decreases_the_loss_and_reports_divergence():
    rng = np.random.default_rng(2)
    prob = make_completion(rng, 3, 4, 2, 40)
    L = CPLoss(prob)
    F0 = torch.tensor(rng.standard_normal((1, 3, 4, 3)) * 0.5)
    run = gd(L, F0, 2.0, 300, 50, prob.T)
    assert run.status == ["ok"] and run.loss[-1, 0] < run.loss[0, 0]
    bad = gd(L, torch.tensor(rng.standard_normal((1, 3, 4, 3)) * 3.0), 1e6, 50, 10, prob.T)
    assert bad.status[0].startswith("diverged at step")


def test_group_rmsprop_first_step_has_length_lr():
    """v_1 / (1 - alpha) = ||2 g||^2: the first step is lr 2g / (||2g|| + eps), of length lr (eps = 0)."""
    rng = np.random.default_rng(4)
    prob = make_completion(rng, 3, 4, 2, 40)
    L = CPLoss(prob)
    F0 = torch.tensor(rng.standard_normal((2, 3, 4, 3)) * 0.5)
    run = group_rmsprop(L, F0, GroupRMSprop(lr=0.05, eps=0.0), 1, 1, prob.T)
    step = (F0 - run.F).flatten(1).norm(dim=1)
    assert torch.allclose(step, torch.full_like(step, 0.05), rtol=1e-13)
    assert run.optimizer.startswith("GroupRMSprop")


def test_group_rmsprop_decreases_the_loss():
    rng = np.random.default_rng(5)
    prob = make_completion(rng, 3, 4, 2, 40)
    run = group_rmsprop(CPLoss(prob), torch.tensor(rng.standard_normal((1, 3, 4, 3)) * 0.3), GroupRMSprop(lr=1e-2),
                        4000, 1000, prob.T)
    assert run.status == ["ok"] and run.loss[-1, 0] < 1e-4 * run.loss[0, 0]


def test_homogeneous_slow_phase_scales_time_by_init_power():
    """Frozen gradient tensor: the flow from c w0 is c w(c^(N-2) t) (theory.tensor): blow-up time ~ rho0^-(N-2)/N."""
    t1 = blowup_time(1e-8, 0.5, 4)
    assert t1 == pytest.approx(1e4 / (2 * 0.5))
    assert blowup_time(1e-8 * 16, 0.5, 4) == pytest.approx(t1 / 4)


def test_bad_inputs_raise_one_clear_error_each():
    with pytest.raises(ValueError, match="non-finite"):
        as_factors(np.full((3, 2, 2), np.nan))
    with pytest.raises(ValueError, match=r"shape \(N, d, R\)"):
        as_factors(np.ones((2, 2)))
    with pytest.raises(ValueError, match="order N >= 2"):
        as_factors(np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="shape mismatch"):
        component_inner(np.ones((2, 2)), np.ones((3, 2, 1)))
    with pytest.raises(ValueError, match=">= 0"):
        norm_rate([-1.0], [1.0], 3)
    with pytest.raises(ValueError, match="shape mismatch"):
        norm_rate([1.0, 2.0], [1.0], 3)
    with pytest.raises(ValueError, match="N >= 3"):
        blowup_time(1e-3, 1.0, 2)
    with pytest.raises(ValueError, match="integer >= 2"):
        norm_rate([1.0], [1.0], 1.5)
    with pytest.raises(ValueError, match="eps"):
        norm_rate_bounds([1.0], [1.0], [-1.0], 3)
    with pytest.raises(ValueError, match="n_obs"):
        make_completion(np.random.default_rng(0), 3, 2, 1, 9)
    with pytest.raises(ValueError, match="finite real scalar"):
        effective_cp_rank([1.0], np.nan)
    with pytest.raises(ValueError, match="GroupRMSprop needs"):
        GroupRMSprop(alpha=1.0)
    with pytest.raises(ValueError, match="eta must be"):
        gd(CPLoss(make_completion(np.random.default_rng(0), 3, 2, 1, 4)), torch.ones(1, 3, 2, 1), 0.0, 1, 1, np.ones((2,) * 3))
    with pytest.raises(ValueError, match="form must be"):
        CPLoss(make_completion(np.random.default_rng(0), 3, 2, 1, 4), form="sparse")
