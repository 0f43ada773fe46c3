"""Assertions comparing a trained result (numpy, torch on any device, JAX) with the package's prediction.

Each ``assert_*`` checks the input (TypeError for a wrong type or dtype, ValueError for a wrong shape, NaN/inf or a
tolerance the dtype cannot resolve, each naming the problem) and on failure raises one AssertionError whose message
gives the predicted and trained value at the worst coordinate, the error against the tolerance, the predictor's
certificate (status, residual) and which side is likely wrong.
Pass rule for arrays: max |trained - predicted| <= atol + rtol * max |predicted| (max-norm, relative).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ._arrays import _is_torch, checked, to_numpy, tolerance
from .problems import (Certificate, DeepMFProblem, DLNGDProblem, DLNProblem, DLNShapeProblem, LinearInitProblem,
                       ReluSegmentProblem, SensingProblem, newton_certificate)

__all__ = ["assert_matches_commuting_limit", "assert_matches_end_to_end", "assert_matches_flow_limit",
           "assert_matches_gd_limit", "assert_matches_init_statistics", "assert_matches_linear_limit",
           "assert_matches_min_sharpness", "assert_matches_shape_limit", "assert_sharpness_within_stability_bound",
           "assert_value_error_or_finite"]


def _problem(func: str, problem, cls):
    if not isinstance(problem, cls):
        raise TypeError(f"{func} expects a {cls.__name__} (from verify.testing.strategies), "
                        f"got {type(problem).__name__}")
    return problem


def _where(idx) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _residual(M: np.ndarray, v: np.ndarray, y: np.ndarray) -> float:
    """||M v - y|| / ||y||."""
    return float(np.linalg.norm(M @ v - y) / max(np.linalg.norm(y), 1e-300))


def _needed(M: np.ndarray, pred: np.ndarray, y: np.ndarray, rtol: float) -> float:
    """Relative residual a run needs for rtol: ||M b - y|| / ||M|| lower-bounds the distance of b to any solution, so
    a trained residual above rtol ||M|| max|b_pred| / ||y|| cannot meet rtol (up to sqrt(d) between the norms)."""
    return float(rtol * np.linalg.norm(M, 2) * np.abs(pred).max() / max(np.linalg.norm(y), 1e-300))


def _verdict(cert: Certificate, trained_res: float | None, needed: float | None, otherwise: str) -> str:
    """Which side is likely wrong: the predictor, an unconverged trained run, or (both fine) the trainer's bias."""
    if not cert.ok:
        return (f"the predictor did not converge ({cert}): the comparison is not meaningful; please report the "
                "problem's repr to implicit-bias-verify")
    if trained_res is not None and needed is not None and trained_res > needed:
        return (f"the trained run has not converged: its residual {trained_res:.3g} is above what rtol needs "
                f"(<= {needed:.3g}); train longer or to a smaller loss")
    return otherwise


def _fail(title: str, problem, pred: np.ndarray, got: np.ndarray, rtol: float, atol: float, cert: Certificate,
          trained_line: str, verdict: str) -> None:
    diff = np.abs(got - pred)
    idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
    scale = float(np.abs(pred).max())
    err = float(diff[idx]) / scale if scale > 0 else float("inf")
    raise AssertionError(
        f"{title} does not match the prediction for {problem!r}\n"
        f"  worst coordinate {_where(idx)}: predicted {float(pred[idx])!r}, trained {float(got[idx])!r}\n"
        f"  relative error {err:.3g} (max |trained - predicted| / max |predicted|) > rtol {rtol:g}"
        + (f" (atol {atol:g})" if atol else "") + "\n"
        f"  predictor certificate: {cert}\n"
        f"  {trained_line}\n"
        f"  likely wrong: {verdict}")


def _close(pred: np.ndarray, got: np.ndarray, rtol: float, atol: float) -> bool:
    return bool(np.abs(got - pred).max() <= atol + rtol * np.abs(pred).max())


def _tols(rtol, atol) -> tuple[float, float]:
    return tolerance(rtol, "rtol"), tolerance(atol, "atol")


def _regression_check(title: str, b, problem, pred, cert: Certificate, rtol: float, atol: float, hint: str) -> None:
    if _close(pred, b, rtol, atol):
        return
    res = _residual(problem.X, b, problem.y)
    need = _needed(problem.X, pred, problem.y, rtol)
    _fail(title, problem, pred, b, rtol, atol, cert, f"trained residual ||X b - y|| / ||y|| = {res:.3g}",
          _verdict(cert, res, need, hint))


def _parametrization_hint(b, problem: DLNProblem, rtol: float, atol: float) -> str:
    """Name the likely mix-up when b matches the other parametrization's limit (`uv` at alpha = `pm` at alpha/sqrt2)."""
    base = ("the trained run interpolates but reached a different interpolator: the trainer's implicit bias differs "
            "from a DLN from problem.params0 (check the init, the parametrization, the depth, and that nothing else "
            "acts: weight decay, momentum, large steps)")
    if problem.depth != 2:
        return base
    from numerics import flow_limit

    other = "uv" if problem.parametrization == "pm" else "pm"
    alt = flow_limit(problem.X, problem.y, problem.alpha, parametrization=other)
    if alt.converged and _close(alt.b, b, max(rtol, 1e-9), atol):
        return (f"the trained b matches the {other!r} prediction instead: the trainer uses the {other!r} "
                f"parametrization or init (`uv` from alpha equals `pm` from alpha/sqrt2), not "
                f"{problem.parametrization!r}")
    return base


def assert_matches_flow_limit(b, problem: DLNProblem, *, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """b (d,) from gradient flow (or small-step GD) = argmin_{Xb=y} Q_alpha or Q^D (Woodworth et al. 2020, Thm 1, 3)."""
    problem = _problem("assert_matches_flow_limit", problem, DLNProblem)
    rtol, atol = _tols(rtol, atol)
    b = checked(b, "b", (problem.d,), repr(problem), rtol)
    pred = problem.prediction
    _regression_check("trained b", b, problem, pred.b, problem.certificate, rtol, atol,
                      "" if _close(pred.b, b, rtol, atol) else _parametrization_hint(b, problem, rtol, atol))


def assert_matches_shape_limit(b, problem: DLNShapeProblem, *, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """b (d,) of a `uv` DLN trained by GF from (u0, v0) = argmin_{Xb=y} D_phi_c(b, u0 v0) (Azulay et al. 2021,
    Thm 4.1)."""
    problem = _problem("assert_matches_shape_limit", problem, DLNShapeProblem)
    rtol, atol = _tols(rtol, atol)
    b = checked(b, "b", (problem.d,), repr(problem), rtol)
    _regression_check("trained b", b, problem, problem.prediction.b, problem.certificate, rtol, atol,
                      "the trained run interpolates but reached a different interpolator: check that it starts from "
                      "(u, v) = (problem.u0, problem.v0) with b = u * v and follows gradient flow")


def _etas(eta, K: int, problem: DLNGDProblem) -> np.ndarray:
    """The step of each of the K steps: problem.eta by default, else a number or (K,) array, finite and > 0."""
    if eta is None:
        return np.full(K, problem.eta)
    try:
        arr = to_numpy(eta, "eta")[0] if hasattr(eta, "detach") else np.asarray(eta, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"eta must be a number or a (K,) array of steps, got {type(eta).__name__}") from None
    if arr.shape not in ((), (K,)) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"eta must be finite, > 0, and a scalar or one step per gradient row (K = {K}); got shape "
                         f"{arr.shape} ({problem!r})")
    return np.broadcast_to(arr, (K,))


def _stats(problem: DLNGDProblem, gradients, eta):
    """A numerics.dln_gd.GDStats: the one given, or one filled from per-step b-gradients (K, d) and eta."""
    import torch

    from numerics.dln_gd import GDStats

    if isinstance(gradients, GDStats):
        if eta is not None:
            raise ValueError("eta is recorded inside a GDStats: pass eta only with an array of gradients")
        return gradients
    g = checked(gradients, "gradients", ("K", problem.d),
                f"{problem!r} (one row per GD step: the b-gradient X_batch^T (X_batch b - y_batch) / batch it used)")
    etas = _etas(eta, g.shape[0], problem)
    stats = GDStats(problem.parametrization, problem.alpha, 1, problem.d)
    gt = torch.as_tensor(g)
    for k in range(g.shape[0]):
        stats.update(gt[k:k + 1], float(etas[k]))
    return stats


def assert_matches_gd_limit(b, problem: DLNGDProblem, gradients, *, eta=None, rtol: float = 1e-8,
                            atol: float = 0.0) -> None:
    """b (d,) from GD/SGD = the exact limit from the run's own steps (Even et al. 2023, Thm 1; numerics.dln_gd).

    ``gradients``: the b-gradient of every step, shape (K, d) (any framework), or a numerics.dln_gd.GDStats that
    recorded them; ``eta``: the step (scalar or (K,)), default problem.eta.
    """
    from numerics.dln_gd import exact_limit

    problem = _problem("assert_matches_gd_limit", problem, DLNGDProblem)
    rtol, atol = _tols(rtol, atol)
    b = checked(b, "b", (problem.d,), repr(problem), rtol)
    pred = exact_limit(problem.X, problem.y, _stats(problem, gradients, eta), 0)
    _regression_check("trained b", b, problem, pred.b, newton_certificate(pred, "numerics.dln_gd.exact_limit"), rtol,
                      atol, "the trained run interpolates but its limit is not the one its recorded steps imply: "
                      "record each step's b-gradient before the update with the eta actually used, and check the "
                      f"parametrization ({problem.parametrization!r}) and the loss scale ||Xb - y||^2 / (2n)")


def _sharpness(params, problem: DLNGDProblem) -> tuple[float, float | None]:
    """(S, trained residual): a scalar is taken as the measured sharpness; (2, d) parameters give the closed form."""
    from numerics.sharpness import sharpness_interp

    arr, _ = to_numpy(params, "params")
    if arr.ndim == 0:
        S = float(arr)
        if not np.isfinite(S) or S < 0:
            raise ValueError(f"the measured sharpness must be finite and >= 0, got {S!r}")
        return S, None
    names = "(u, v)" if problem.parametrization == "uv" else "(w+, w-)"
    p = checked(params, "params", (2, problem.d),
                f"{problem!r} (trained parameters {names} of shape (2, d), or the measured sharpness as a scalar)")
    b = p[0] * p[1] if problem.parametrization == "uv" else p[0] ** 2 - p[1] ** 2
    return float(sharpness_interp(problem.parametrization, p[None], problem.X)[0]), _residual(problem.X, b, problem.y)


def assert_sharpness_within_stability_bound(params, problem: DLNGDProblem, *, eta=None, rtol: float = 1e-6) -> None:
    """S_min <= S <= 2/eta at a converged GD run (linear stability; THEORY §2; Fojtik et al. 2025).

    ``params``: the (2, d) parameters of a converged run (S by the closed form at an interpolator) or the measured
    S (scalar).
    """
    problem = _problem("assert_sharpness_within_stability_bound", problem, DLNGDProblem)
    rtol = tolerance(rtol, "rtol")
    S, res = _sharpness(params, problem)
    eta = problem.eta if eta is None else tolerance(eta, "eta")
    bound, S_min, cert = 2.0 / eta, problem.min_sharpness, problem.certificate
    if S_min * (1 - rtol) <= S <= bound * (1 + rtol):
        return
    low = S < S_min * (1 - rtol)
    pred = S_min if low else bound
    if not cert.ok:
        verdict = _verdict(cert, None, None, "")
    elif res is not None and res > 1e-6:
        verdict = (f"the trained run has not converged (residual {res:.3g}): the closed-form sharpness and the "
                   "bound hold at an interpolator only")
    elif low:
        verdict = ("the sharpness is below the minimum over all interpolators: the measurement is wrong (loss "
                   "scale ||Xb - y||^2 / (2n), parametrization, or a Hessian that is not the full one)")
    elif eta > problem.eta_max:
        verdict = (f"eta = {eta:.6g} > eta_max = {problem.eta_max:.6g}: no interpolator is stable, the run should "
                   "diverge")
    else:
        verdict = ("a converged run above 2/eta repels GD: the step actually used differs from eta (check the loss "
                   "scale 1/(2n): a sum instead of a mean multiplies the step by n) or the sharpness measurement")
    raise AssertionError(
        f"trained sharpness violates {'S >= S_min' if low else 'S <= 2/eta'} for {problem!r}\n"
        f"  predicted {'S_min' if low else 'bound 2/eta'} {pred!r}, trained S {S!r} (S eta / 2 = {S * eta / 2:.6g})\n"
        f"  relative error {abs(S - pred) / pred:.3g} > rtol {rtol:g} (eta {eta:.6g}, eta_c {problem.eta_c:.6g}, "
        f"eta_max {problem.eta_max:.6g})\n"
        f"  predictor certificate: {cert}\n"
        f"  trained residual ||X b - y|| / ||y|| = {'not given (scalar S)' if res is None else f'{res:.3g}'}\n"
        f"  likely wrong: {verdict}")


def assert_matches_min_sharpness(b, problem: DLNGDProblem, *, rtol: float = 1e-6) -> None:
    """b (d,) minimizes lambda_max(X diag|b| X^T / n) over Xb = y (the SDP of THEORY §2; numerics.sharpness)."""
    from numerics.sharpness import lam_max

    problem = _problem("assert_matches_min_sharpness", problem, DLNGDProblem)
    rtol = tolerance(rtol, "rtol")
    b = checked(b, "b", (problem.d,), repr(problem), rtol)
    ms, cert = problem.min_sharpness_solution, problem.certificate
    got = float(lam_max(problem.X, np.abs(b)[None])[0])
    res = _residual(problem.X, b, problem.y)
    if abs(got - ms.value) <= rtol * ms.value and res <= rtol:
        return
    verdict = _verdict(cert, res, rtol, "b interpolates but its lambda_max is " + (
        "above the minimum: b is not a minimum-sharpness interpolator" if got > ms.value else
        "below the certified lower bound: impossible for an interpolator; check X, y and the 1/n scale"))
    raise AssertionError(
        f"lambda_max(X diag|b| X^T / n) does not match the minimum-sharpness value for {problem!r}\n"
        f"  predicted {float(ms.value)!r} (certified in [{float(ms.lower)!r}, {float(ms.value)!r}]), trained {got!r}\n"
        f"  relative error {abs(got - ms.value) / ms.value:.3g} > rtol {rtol:g}\n"
        f"  predictor certificate: {cert}\n"
        f"  trained residual ||X b - y|| / ||y|| = {res:.3g}\n"
        f"  likely wrong: {verdict}")


def assert_matches_commuting_limit(W, problem: SensingProblem, *, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """W = U U^T (d, d) trained by GF from U0 = alpha I = the commuting closed form (Gunasekar et al. 2017, Sec. 3)."""
    problem = _problem("assert_matches_commuting_limit", problem, SensingProblem)
    if not problem.commuting:
        raise ValueError(f"{problem!r} is not commuting: no GF limit is proven (the nuclear-norm conjecture is "
                         "refuted, claim mf.sensing.nuclear); compare with problem.prediction (the minimum-trace "
                         "solution) as a measurement, not an assertion")
    rtol, atol = _tols(rtol, atol)
    W = checked(W, "W", (problem.d, problem.d), repr(problem), rtol)
    pred = problem.prediction.W
    if _close(pred, W, rtol, atol):
        return
    M = problem.As.reshape(problem.m, -1)
    res = problem.measurement_residual(W)
    need = _needed(M, pred, problem.y, rtol)
    _fail("trained W", problem, pred, W, rtol, atol, problem.certificate,
          f"trained residual ||A(W) - y|| / ||y|| = {res:.3g}", _verdict(
              problem.certificate, res, need, "the trained W fits the measurements but is another solution: check "
              "W = U U^T from U0 = problem.U0 = alpha I and the loss sum_i (<A_i, W> - y_i)^2 / (2m)"))


def assert_matches_end_to_end(W, problem: DeepMFProblem, *, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """End-to-end W(t) of N balanced factors under GF = the end-to-end ODE (Arora, Cohen, Hu, Luo 2019, Thm 1).

    ``W``: (T, d, d) at problem.t_eval, or (d, d) at problem.t_eval[-1].
    """
    problem = _problem("assert_matches_end_to_end", problem, DeepMFProblem)
    rtol, atol = _tols(rtol, atol)
    arr, _ = to_numpy(W, "W")
    T, d = len(problem.t_eval), problem.d
    shape = (d, d) if arr.ndim == 2 else (T, d, d)
    W = checked(W, "W", shape, f"{problem!r} (W at every t in problem.t_eval, or at the last one)", rtol)
    cert = problem.certificate
    if problem.prediction.W.shape[0] != T:
        raise AssertionError(f"the end-to-end predictor stopped before t = {problem.t_eval[-1]:g} for {problem!r}\n"
                             f"  predictor certificate: {cert}\n  likely wrong: the predictor (no comparison made)")
    pred = problem.prediction.W if W.ndim == 3 else problem.prediction.W[-1]
    if _close(pred, W, rtol, atol):
        return
    scale = np.abs(pred).max()
    if W.ndim == 3:
        per_t = np.abs(W - pred).reshape(T, -1).max(axis=1) / scale
        start = problem.t_eval[0] == 0 and per_t[0] > rtol
        verdict = ("the trained run starts from a different W(0): start from problem.factors (balanced)" if start else
                   f"the error grows along the run ({', '.join(f'{e:.2g}' for e in per_t)} at t = "
                   f"{', '.join(f'{t:g}' for t in problem.t_eval)}): the trainer is not an accurate gradient flow "
                   "(GD tracks GF to O(eta): shrink the step) or its loss is not sum_i (<A_i, W> - y_i)^2 / (2m)")
        line = f"error per time: max {per_t.max():.3g}"
    else:
        verdict, line = ("the trainer is not an accurate gradient flow of problem.factors, or its time scale or loss "
                         "differs; pass W at every problem.t_eval to locate where it departs"), "final time only"
    _fail("trained end-to-end W", problem, pred, W, rtol, atol, cert, line, _verdict(cert, None, None, verdict))


def assert_matches_linear_limit(w, problem: LinearInitProblem, *, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """Linear model from w0 (depth 1) or balanced depth N (end-to-end w0) = its limit (Gruber & Avron 2024)."""
    from numerics.linear import one_layer_limit, pinv_solution

    problem = _problem("assert_matches_linear_limit", problem, LinearInitProblem)
    rtol, atol = _tols(rtol, atol)
    w = checked(w, "w", (problem.d,), repr(problem), rtol)
    pred = problem.prediction.b
    if _close(pred, w, rtol, atol):
        return
    hint = ("the trained w interpolates but keeps a different null-space component than predicted: check the init "
            "(w0 = problem.w0; deep nets: balanced layers with end-to-end w0) and that nothing else acts "
            "(weight decay)")
    if _close(pinv_solution(problem.X, problem.y).b, w, max(rtol, 1e-9), atol):
        hint = "the trained w is the minimum-norm solution X^+ y: the run lost its init's null-space part P_perp w0"
    elif problem.depth > 1 and _close(one_layer_limit(problem.X, problem.y, problem.w0).b, w, max(rtol, 1e-9),
                                      atol):
        hint = f"the trained w is the one-layer limit w0 + X^+(y - X w0): the trainer is not depth {problem.depth}"
    _regression_check("trained w", w, problem, pred, problem.certificate, rtol, atol, hint)


_INIT_KEYS = {"kinks_per_unit": "kinks_per_unit", "gap_sq": "gap_sq", "gap_along_sq": "gap_along_var",
              "gap_across_sq": "gap_across_sq", "chord_sq": "chord_var"}


def _segment_samples(W: np.ndarray, a: np.ndarray, problem: ReluSegmentProblem) -> dict[str, np.ndarray]:
    """Per network: kinks / m, |gap|^2, (u . gap)^2, |gap_perp|^2, c(t)^2 (numerics.relu; Kubo et al. 2019)."""
    from numerics.relu import input_gradient, segment_profile, two_layer

    x0, x1 = problem.x0, problem.x1
    u = (x1 - x0) / np.linalg.norm(x1 - x0)
    rows = []
    for Wr, ar in zip(W, a):
        net = two_layer(Wr, ar / np.sqrt(problem.width))
        prof = segment_profile(net, x0, x1)
        gap = (input_gradient(net, x1) - input_gradient(net, x0))[0]
        along = gap @ u
        rows.append((prof.n_kinks / problem.width, gap @ gap, along**2, gap @ gap - along**2,
                     float(prof.chord_deviation(problem.t)[0, 0]) ** 2))
    return dict(zip(_INIT_KEYS, np.array(rows).T))


def assert_matches_init_statistics(W, a, problem: ReluSegmentProblem, *, level: float = 1e-3) -> None:
    """Sampled first layers W (R, m, d) and output weights a (R, m) of f = m^{-1/2} sum_j a_j relu(w_j . x) match the
    arc-cosine closed forms on the segment (kinks, gradient gap, chord): two-sided z tests, Bonferroni at ``level``."""
    from scipy.stats import norm

    problem = _problem("assert_matches_init_statistics", problem, ReluSegmentProblem)
    level = tolerance(level, "level")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    what = f"{problem!r} (R sampled networks, R >= 30)"
    W = checked(W, "W", ("R", problem.width, problem.d), what + ": first layers")
    a = checked(a, "a", (W.shape[0], problem.width), what + ": output weights, scalar output")
    if W.shape[0] < 30:
        raise ValueError(f"pass at least 30 sampled networks for the z tests, got {W.shape[0]}")
    samples, pred = _segment_samples(W, a, problem), problem.prediction
    zcrit = float(norm.isf(level / (2 * len(_INIT_KEYS))))
    rows = []
    for key, ref in _INIT_KEYS.items():
        x = samples[key]
        mean, se = float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x)))
        z = abs(mean - pred[ref]) / se if se > 0 else (0.0 if abs(mean - pred[ref]) <= 1e-12 else np.inf)
        rows.append((z, key, ref, mean, se))
    z, key, ref, mean, se = max(rows)
    if z <= zcrit:
        return
    ratio = mean / pred[ref] if pred[ref] else np.inf
    m = problem.width
    verdict = ("the output scale is off: f must be m^(-1/2) sum_j a_j relu(w_j . x) with a ~ N(0, sa^2), "
               f"w ~ N(0, sw^2 I) (mean / predicted = {ratio:.3g}, m = {m})" if key != "kinks_per_unit"
               else "the kink rate is off: check w ~ N(0, sw^2 I) (isotropic, no bias)")
    raise AssertionError(
        f"sampled networks do not match the init closed form {ref!r} for {problem!r}\n"
        f"  worst quantity {key}: predicted {float(pred[ref])!r}, sampled mean {mean!r} +- {se:.3g} "
        f"(R = {W.shape[0]})\n"
        f"  z = {z:.3g} > {zcrit:.3g} (two-sided, Bonferroni over {len(_INIT_KEYS)} at level {level:g})\n"
        f"  predictor certificate: {problem.certificate}\n"
        f"  likely wrong: {verdict}")


def _numeric_leaves(out) -> list[np.ndarray]:
    """Every float array or number inside out (arrays, numbers, tuples, lists, dicts, dataclasses, torch tensors)."""
    if _is_torch(out):
        out = to_numpy(out, "output")[0] if out.is_floating_point() else np.zeros(0)
    if isinstance(out, (np.ndarray, float, np.floating)):
        arr = np.asarray(out)
        return [arr] if arr.dtype.kind in "fc" else []
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _numeric_leaves(o)]
    if isinstance(out, dict):
        return [a for o in out.values() for a in _numeric_leaves(o)]
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return [a for f in dataclasses.fields(out) for a in _numeric_leaves(getattr(out, f.name))]
    return []


def assert_value_error_or_finite(fn, *args, **kwargs):
    """Bad input gives a ValueError with a message, never a silent NaN: fn(*args, **kwargs) either raises ValueError
    with a message (returns None) or returns an output with no NaN or inf anywhere (returned; dataclass fields,
    containers and torch tensors are searched). Any other exception propagates."""
    if not callable(fn):
        raise TypeError(f"assert_value_error_or_finite expects a callable, got {type(fn).__name__}")
    name = getattr(fn, "__name__", repr(fn))
    try:
        out = fn(*args, **kwargs)
    except ValueError as exc:
        if not str(exc).strip():
            raise AssertionError(f"{name} raised a ValueError without a message") from exc
        return None
    for a in _numeric_leaves(out):
        if not np.all(np.isfinite(a)):
            raise AssertionError(f"{name} returned non-finite entries (NaN or inf) instead of raising ValueError: "
                                 f"{np.size(a) - int(np.isfinite(a).sum())} of {np.size(a)} in an output of shape "
                                 f"{np.shape(a)}")
    return out
