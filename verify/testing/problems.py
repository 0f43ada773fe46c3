"""Problem instances for testing trainers against the package's predictions: frozen, validated, predictions lazy.

Every problem is a frozen dataclass holding float64 arrays (copies; do not mutate them) and computes its prediction on
first access (``problem.prediction``: the predictor's own result, numerics.result: ``b`` or ``W`` with status,
residual, converged) with a uniform ``problem.certificate`` (predictor, status, residual, ok). ``repr(problem)`` is a
constructor call with lists: paste it to replay a failure.
Conventions (THEORY §0): loss ||X b - y||^2 / (2n); `pm` b = w+^2 - w-^2 from w+- = alpha; `uv` b = u v from
(sqrt2 alpha, 0); depth D b = w+^D - w-^D from alpha.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from numerics.result import Certified
from numerics.validate import as_matrix, as_vector, depth_value, integer, positive_scalar

STABLE, EOS = "stable", "eos"


@dataclass(frozen=True)
class Certificate:
    """Uniform view of a predictor's diagnostics: its status, relative residual, and whether to trust it."""

    predictor: str
    status: str
    residual: float
    ok: bool

    def __str__(self) -> str:
        flag = "" if self.ok else " (NOT OK)"
        return f"{self.predictor}: status {self.status}, residual {self.residual:.3g}{flag}"


def newton_certificate(pred, predictor: str) -> Certificate:
    """Certificate of a numerics.newton.Prediction: converged, or stalled at the float64 floor (residual <= 1e-10)."""
    ok = pred.converged or (pred.status == "stalled" and pred.residual <= 1e-10)
    return Certificate(predictor, pred.status, float(pred.residual), bool(ok and np.all(np.isfinite(pred.b))))


def _frozen(a) -> np.ndarray:
    """A float64 copy, left writable (torch.as_tensor warns on read-only arrays); do not mutate: predictions are
    cached."""
    return np.array(a, dtype=np.float64)


def _full_row_rank(X) -> np.ndarray:
    """X (n x d) with rank n; ValueError otherwise (numerics.linear.full_row_rank)."""
    from numerics.linear import full_row_rank

    return _frozen(full_row_rank(X))


def _fmt(v) -> str:
    if isinstance(v, np.ndarray):
        return repr(v.tolist())
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


class _Problem:
    """Shared behaviour: identity equality/hash (arrays inside) and a replayable repr."""

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={_fmt(getattr(self, f.name))}" for f in fields(self))
        return f"{type(self).__name__}({args})"

    def _repr_pretty_(self, p, cycle) -> None:
        """Hypothesis prints falsifying examples with this (its default would drop the replayable repr)."""
        p.text(repr(self))

    def _set(self, **kw) -> None:
        for k, v in kw.items():
            object.__setattr__(self, k, v)


def _kind(parametrization: str, depth: int) -> str:
    if parametrization not in ("pm", "uv"):
        raise ValueError(f"parametrization must be 'pm' or 'uv', got {parametrization!r}")
    if parametrization == "uv" and depth != 2:
        raise ValueError("the 'uv' parametrization is depth 2 only (THEORY §0); use 'pm' for depth >= 3")
    return parametrization


def _init_params(kind: str, alpha: float, d: int) -> np.ndarray:
    """(2, d) standard init (THEORY §0): `pm`/depth (alpha, alpha), `uv` (sqrt2 alpha, 0)."""
    a = np.full(d, alpha)
    return _frozen(np.stack([a, a]) if kind == "pm" else np.stack([np.sqrt(2.0) * a, np.zeros(d)]))


def _regression(obj, X, y) -> None:
    X = _full_row_rank(X)
    obj._set(X=X, y=_frozen(as_vector(y, X.shape[0])))


@dataclass(frozen=True, eq=False, repr=False)
class DLNProblem(_Problem):
    """DLN regression from scale alpha; prediction: GF limit argmin_{Xb=y} Q_alpha / Q^D (Woodworth et al. 2020)."""

    X: np.ndarray
    y: np.ndarray
    alpha: float
    depth: int = 2
    parametrization: str = "pm"

    def __post_init__(self):
        _regression(self, self.X, self.y)
        depth = depth_value(self.depth)
        self._set(alpha=positive_scalar(self.alpha, "alpha"), depth=depth,
                  parametrization=_kind(self.parametrization, depth))

    n = property(lambda self: self.X.shape[0])
    d = property(lambda self: self.X.shape[1])

    @property
    def params0(self) -> np.ndarray:
        """Initial parameters (2, d): (w+, w-) = (alpha, alpha) for `pm`/depth, (u, v) = (sqrt2 alpha, 0) for `uv`."""
        return _init_params(self.parametrization, self.alpha, self.d)

    @cached_property
    def prediction(self):
        """numerics.flow_limit: a Prediction (b, nu, residual, status)."""
        from numerics import flow_limit

        return flow_limit(self.X, self.y, self.alpha, depth=self.depth, parametrization=self.parametrization)

    @property
    def certificate(self) -> Certificate:
        return newton_certificate(self.prediction, "numerics.flow_limit")

    @classmethod
    def random(cls, seed: int = 0, n: int = 3, d: int = 6, alpha: float = 0.1, depth: int = 2,
               parametrization: str = "pm") -> DLNProblem:
        """Gaussian X, y from np.random.default_rng(seed) (a fixed instance, e.g. for a fixture)."""
        rng = np.random.default_rng(seed)
        return cls(rng.standard_normal((n, d)), rng.standard_normal(n), alpha, depth, parametrization)


@dataclass(frozen=True, eq=False, repr=False)
class DLNShapeProblem(_Problem):
    """`uv` DLN from any (u0, v0), |u0| != |v0|: Bregman limit of phi_c, c = |u0^2 - v0^2|/2 (Azulay et al. 2021)."""

    X: np.ndarray
    y: np.ndarray
    u0: np.ndarray
    v0: np.ndarray

    def __post_init__(self):
        _regression(self, self.X, self.y)
        u0 = as_vector(self.u0, self.X.shape[1], "u0", "X^T")
        v0 = as_vector(self.v0, self.X.shape[1], "v0", "X^T")
        if np.any(np.abs(u0) == np.abs(v0)):
            raise ValueError("u0 and v0 need |u0_i| != |v0_i| for every i (c_i = |u0_i^2 - v0_i^2|/2 > 0)")
        self._set(u0=_frozen(u0), v0=_frozen(v0))

    n = property(lambda self: self.X.shape[0])
    d = property(lambda self: self.X.shape[1])
    parametrization = "uv"

    @property
    def params0(self) -> np.ndarray:
        return _frozen(np.stack([self.u0, self.v0]))

    @cached_property
    def prediction(self):
        """numerics.shape_limit: a Prediction."""
        from numerics import shape_limit

        return shape_limit(self.X, self.y, self.u0, self.v0)

    @property
    def certificate(self) -> Certificate:
        return newton_certificate(self.prediction, "numerics.shape_limit")

    @classmethod
    def random(cls, seed: int = 0, n: int = 3, d: int = 6, scale: float = 0.5) -> DLNShapeProblem:
        rng = np.random.default_rng(seed)
        u0 = scale * rng.uniform(0.5, 1.5, d) * rng.choice([-1, 1], d)
        return cls(rng.standard_normal((n, d)), rng.standard_normal(n), u0, scale * rng.uniform(-0.4, 0.4, d))


@dataclass(frozen=True)
class StabilityPrediction(Certified):
    """Step-size facts of GD on a DLN (THEORY §2): eta, eta_c = 2/max S along GF, eta_max = 2/S_min, 2/eta."""

    eta: float
    eta_c: float
    eta_max: float
    sharpness_bound: float     # 2 / eta: linear stability of the GD map at its limit
    min_sharpness: float       # S_min = factor * lambda* of the min-sharpness interpolator (factor 2 `uv`, 4 `pm`)
    status: str                # "ok" | what failed: the GF path or the SDP
    residual: float            # max(SDP residual, SDP gap / value)

    OK = ("ok",)


@dataclass(frozen=True, eq=False, repr=False)
class DLNGDProblem(_Problem):
    """GD on a depth-2 DLN at step eta chosen relative to eta_c and eta_max (Even et al. 2023; Fojtik et al. 2025).

    regime 'stable': eta = fraction * eta_c; 'eos': eta = eta_c + fraction (eta_max - eta_c). eta_c and eta_max are
    computed on first use (a Radau GF path with full Hessians; the min-sharpness SDP).
    """

    X: np.ndarray
    y: np.ndarray
    alpha: float
    parametrization: str = "uv"
    regime: str = STABLE
    fraction: float = 0.5

    def __post_init__(self):
        _regression(self, self.X, self.y)
        if self.regime not in (STABLE, EOS):
            raise ValueError(f"regime must be {STABLE!r} or {EOS!r}, got {self.regime!r}")
        fraction = positive_scalar(self.fraction, "fraction")
        if fraction >= 1:
            raise ValueError(f"fraction must lie in (0, 1), got {fraction!r}")
        self._set(alpha=positive_scalar(self.alpha, "alpha"), parametrization=_kind(self.parametrization, 2),
                  fraction=fraction)

    n = property(lambda self: self.X.shape[0])
    d = property(lambda self: self.X.shape[1])
    depth = 2

    @property
    def params0(self) -> np.ndarray:
        return _init_params(self.parametrization, self.alpha, self.d)

    @cached_property
    def gf_path(self):
        """numerics.sharpness.gf_path_sharpness: a SharpnessPath along the GF path (slow: ~0.2 s at n = 3, d = 6)."""
        from numerics.sharpness import gf_path_sharpness

        return gf_path_sharpness(self.X, self.y, self.alpha, self.parametrization)

    @cached_property
    def min_sharpness_solution(self):
        """numerics.sharpness.min_sharpness: the minimum-sharpness interpolator (SDP, certified gap)."""
        from numerics.sharpness import min_sharpness

        return min_sharpness(self.X, self.y)

    @property
    def eta_c(self) -> float:
        return float(self.gf_path.eta_c_path)

    @property
    def eta_max(self) -> float:
        return float(self.min_sharpness_solution.eta_max(self.parametrization))

    @property
    def min_sharpness(self) -> float:
        return float(self.min_sharpness_solution.sharpness(self.parametrization))

    @property
    def eta(self) -> float:
        if self.regime == STABLE:
            return self.fraction * self.eta_c
        return self.eta_c + self.fraction * (self.eta_max - self.eta_c)

    @cached_property
    def prediction(self) -> StabilityPrediction:
        ms = self.min_sharpness_solution
        status = ("ok" if self.gf_path.converged and ms.status == "optimal"
                  else f"GF path {self.gf_path.status}, SDP {ms.status}")
        rel_gap = ms.gap / max(abs(ms.value), 1e-300)
        return StabilityPrediction(self.eta, self.eta_c, self.eta_max, 2.0 / self.eta, self.min_sharpness, status,
                                   float(max(ms.residual, rel_gap)))

    @property
    def certificate(self) -> Certificate:
        p = self.prediction
        return Certificate("numerics.sharpness (gf_path_sharpness, min_sharpness)", p.status, p.residual,
                           p.status == "ok" and p.residual <= 1e-6)

    @cached_property
    def gf_prediction(self):
        """The eta -> 0 limit (numerics.flow_limit): GD is O(eta) from it below eta_c."""
        from numerics import flow_limit

        return flow_limit(self.X, self.y, self.alpha, parametrization=self.parametrization)

    @classmethod
    def random(cls, seed: int = 0, n: int = 3, d: int = 6, alpha: float = 0.1, parametrization: str = "uv",
               regime: str = STABLE, fraction: float = 0.5) -> DLNGDProblem:
        rng = np.random.default_rng(seed)
        return cls(rng.standard_normal((n, d)), rng.standard_normal(n), alpha, parametrization, regime, fraction)


def _sensing_stack(As, name: str = "As") -> np.ndarray:
    from numerics.mf_commuting import sensing_stack

    return _frozen(sensing_stack(As, name))


def _sensing_grad(As: np.ndarray, y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """G(W) = sum_i (<A_i, W> - y_i) A_i / m (loss sum_i (<A_i, W> - y_i)^2 / (2m))."""
    return np.tensordot(np.einsum("mij,ij->m", As, W) - y, As, axes=1) / As.shape[0]


@dataclass(frozen=True, eq=False, repr=False)
class SensingProblem(_Problem):
    """Symmetric sensing of W = U U^T from U0 = alpha I (Gunasekar et al. 2017).

    commuting: prediction numerics.matrix.commuting_limit (a theorem). Not commuting: there is no proven limit
    (the nuclear-norm conjecture is refuted: claim mf.sensing.nuclear); prediction is then the certified minimum-trace
    PSD solution (numerics.matrix.min_trace_certified), a reference to measure a gap against, not a limit.
    """

    As: np.ndarray
    y: np.ndarray
    alpha: float
    commuting: bool = True

    def __post_init__(self):
        from numerics.mf_commuting import commuting_basis

        As = _sensing_stack(self.As)
        if np.abs(As - As.transpose(0, 2, 1)).max() > 1e-12 * np.abs(As).max():
            raise ValueError("sensing matrices As must be symmetric for W = U U^T")
        self._set(As=As, y=_frozen(as_vector(self.y, As.shape[0], "y", "As")),
                  alpha=positive_scalar(self.alpha, "alpha"), commuting=bool(self.commuting))
        if self.commuting:
            commuting_basis(As)    # ValueError naming the pair that does not commute

    m = property(lambda self: self.As.shape[0])
    d = property(lambda self: self.As.shape[1])

    @property
    def U0(self) -> np.ndarray:
        return _frozen(self.alpha * np.eye(self.d))

    def grad(self, W) -> np.ndarray:
        """dL/dW = sum_i (<A_i, W> - y_i) A_i / m."""
        return _sensing_grad(self.As, self.y, np.asarray(W, dtype=np.float64))

    def measurement_residual(self, W) -> float:
        """||A(W) - y|| / ||y||."""
        r = np.einsum("mij,ij->m", self.As, np.asarray(W, dtype=np.float64)) - self.y
        return float(np.linalg.norm(r) / max(np.linalg.norm(self.y), 1e-300))

    @cached_property
    def prediction(self):
        """CommutingPrediction (commuting) or CertifiedMinTrace (not commuting: a reference, not a limit)."""
        from numerics.matrix import commuting_limit, min_trace_certified

        return commuting_limit(self.As, self.y, self.alpha) if self.commuting else min_trace_certified(self.As, self.y)

    @property
    def certificate(self) -> Certificate:
        p = self.prediction
        if self.commuting:
            return Certificate("numerics.matrix.commuting_limit", p.status, float(p.residual),
                               p.converged and bool(np.all(np.isfinite(p.W))))
        gap = (p.upper - p.lower) / max(abs(p.upper), 1e-300)
        return Certificate("numerics.matrix.min_trace_certified", p.status, float(max(p.residual, gap)),
                           p.converged and max(p.residual, gap) <= 1e-6)

    @classmethod
    def random(cls, seed: int = 0, d: int = 4, m: int = 2, alpha: float = 0.1, commuting: bool = True):
        rng = np.random.default_rng(seed)
        if commuting:
            Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
            a = rng.standard_normal((m, d))
            return cls(np.einsum("ij,mj,kj->mik", Q, a, Q), a @ rng.uniform(0.5, 1.5, d), alpha, True)
        B = rng.standard_normal((m, d, d))
        G = rng.standard_normal((d, d))
        As = (B + B.transpose(0, 2, 1)) / 2
        return cls(As, np.einsum("mij,ij->m", As, G @ G.T), alpha, False)


@dataclass(frozen=True, eq=False, repr=False)
class DeepMFProblem(_Problem):
    """Deep factorization W = W_N...W_1 from balanced factors, sensing loss; prediction: the end-to-end ODE solution
    at t_eval (numerics.matrix.integrate_end_to_end; Arora, Cohen, Hu, Luo 2019, Thm 1)."""

    As: np.ndarray
    y: np.ndarray
    factors: tuple
    t_eval: np.ndarray

    def __post_init__(self):
        from numerics.mf_deep import require_balanced
        from numerics.validate import times

        As = _sensing_stack(self.As)
        factors = tuple(_frozen(as_matrix(F, f"factors[{j}]")) for j, F in enumerate(self.factors))
        W0 = require_balanced(list(factors))
        if W0.shape != As.shape[1:]:
            raise ValueError(f"the product of the factors has shape {W0.shape} but the sensing matrices are "
                             f"{As.shape[1:]}")
        self._set(As=As, y=_frozen(as_vector(self.y, As.shape[0], "y", "As")), factors=factors,
                  t_eval=_frozen(times(self.t_eval)))

    depth = property(lambda self: len(self.factors))
    d = property(lambda self: self.As.shape[1])

    @property
    def W0(self) -> np.ndarray:
        W = self.factors[0]
        for F in self.factors[1:]:
            W = F @ W
        return _frozen(W)

    def grad(self, W) -> np.ndarray:
        """dL/dW = sum_i (<A_i, W> - y_i) A_i / m."""
        return _sensing_grad(self.As, self.y, np.asarray(W, dtype=np.float64))

    @cached_property
    def prediction(self):
        """numerics.matrix.integrate_end_to_end: EndToEnd (t, W (T, d, d), sigma (T, d), status, residual)."""
        from numerics.matrix import integrate_end_to_end

        return integrate_end_to_end(list(self.factors), self.grad, self.t_eval)

    @property
    def certificate(self) -> Certificate:
        """Residual: the singular-value ODE against the SVD of the end-to-end solution (two integrated quantities)."""
        p = self.prediction
        if p.W.shape[0] != len(self.t_eval):
            return Certificate("numerics.matrix.integrate_end_to_end", p.status, float("inf"), False)
        return Certificate("numerics.matrix.integrate_end_to_end", p.status, p.residual,
                           p.converged and p.residual <= 1e-7)

    @classmethod
    def random(cls, seed: int = 0, d: int = 3, depth: int = 3, m: int = 4, scale: float = 0.5, t_end: float = 2.0):
        from numerics.mf_deep import balanced_factors

        rng = np.random.default_rng(seed)
        fac = balanced_factors(scale * rng.standard_normal((d, d)), depth, rng)
        return cls(rng.standard_normal((m, d, d)), rng.standard_normal(m), tuple(fac), np.linspace(0, t_end, 5))


@dataclass(frozen=True, eq=False, repr=False)
class LinearInitProblem(_Problem):
    """Underdetermined least squares from an init w0 (Gruber & Avron 2024): depth 1 -> w0 + X^+(y - X w0);
    balanced depth N >= 2 with end-to-end w0 -> X^+ y + kappa P_perp w0."""

    X: np.ndarray
    y: np.ndarray
    w0: np.ndarray
    depth: int = 1

    def __post_init__(self):
        _regression(self, self.X, self.y)
        w0 = as_vector(self.w0, self.X.shape[1], "w0", "X^T")
        if not np.any(w0):
            raise ValueError("w0 = 0 is a saddle of a deep linear network; pass w0 != 0")
        self._set(w0=_frozen(w0), depth=integer(self.depth, "depth", 1))

    n = property(lambda self: self.X.shape[0])
    d = property(lambda self: self.X.shape[1])

    @cached_property
    def prediction(self):
        """numerics.linear.one_layer_limit (depth 1) or deep_limit (depth >= 2): a Prediction, the limit b (d,)."""
        from numerics.linear import deep_limit, one_layer_limit

        return (one_layer_limit(self.X, self.y, self.w0) if self.depth == 1
                else deep_limit(self.X, self.y, self.w0, self.depth))

    @property
    def certificate(self) -> Certificate:
        """Residual: ||X b - y|| / ||y|| and, at depth >= 2, kappa's own equation residual (numerics.linear.kappa)."""
        p = self.prediction
        res = p.residual if self.depth == 1 else max(p.residual, p.kappa.residual)
        name = "numerics.linear." + ("one_layer_limit" if self.depth == 1 else "deep_limit")
        return Certificate(name, p.status, float(res), p.converged and res <= 1e-10)

    @classmethod
    def random(cls, seed: int = 0, n: int = 3, d: int = 7, depth: int = 1) -> LinearInitProblem:
        rng = np.random.default_rng(seed)
        return cls(rng.standard_normal((n, d)), rng.standard_normal(n), rng.standard_normal(d), depth)


@dataclass(frozen=True, eq=False, repr=False)
class ReluSegmentProblem(_Problem):
    """Two-layer ReLU nets f = m^{-1/2} sum_j a_j relu(w_j . x) at init, a ~ N(0, sa^2), w ~ N(0, sw^2 I), on the
    segment x0 -> x1 at angle theta (Kubo et al. 2019; closed forms from Cho & Saul arc-cosine kernels)."""

    d: int
    width: int
    theta: float
    r0: float = 1.0
    r1: float = 1.0
    sa: float = 1.0
    sw: float = 1.0
    t: float = 0.5

    def __post_init__(self):
        theta = positive_scalar(self.theta, "theta")
        if theta >= np.pi:
            raise ValueError(f"theta must lie in (0, pi), got {theta!r}")
        t = positive_scalar(self.t, "t")
        if t >= 1:
            raise ValueError(f"t must lie in (0, 1), got {t!r}")
        self._set(d=integer(self.d, "d", 2), width=integer(self.width, "width", 1), theta=theta, t=t,
                  **{k: positive_scalar(getattr(self, k), k) for k in ("r0", "r1", "sa", "sw")})

    @property
    def x0(self) -> np.ndarray:
        return _frozen(np.r_[self.r0, np.zeros(self.d - 1)])

    @property
    def x1(self) -> np.ndarray:
        return _frozen(np.r_[self.r1 * np.cos(self.theta), self.r1 * np.sin(self.theta), np.zeros(self.d - 2)])

    @cached_property
    def prediction(self) -> dict:
        """numerics.relu.init_closed_forms: expectations per network (kinks per unit, E|gap|^2, variances)."""
        from numerics.relu import init_closed_forms

        cf = init_closed_forms(self.theta, self.r0, self.r1, self.sa, self.sw, self.d, self.t)
        return {k: float(v) for k, v in cf.items()}

    @property
    def certificate(self) -> Certificate:
        ok = all(np.isfinite(v) for v in self.prediction.values())
        return Certificate("numerics.relu.init_closed_forms", "closed form", 0.0, ok)
