"""Claims: which solution of an underdetermined linear system a (deep) linear network picks from its init."""
from __future__ import annotations

import numpy as np
import torch

from numerics.linear import deep_limit, null_projection, one_layer_limit
from verify.train.linear import balanced_init, end_to_end, gaussian_init, ntk_end_to_end, train_gd, train_gf

from verify.train.device import one_thread
from .registry import Context, Measurement, claim

SOURCE = "Gruber & Avron 2024, arXiv 2402.02454"


def _problem(rng, n, d):
    """Gaussian X scaled so that lambda_max(X X^T / n) = 1, y ~ N(0, I)."""
    X = rng.standard_normal((n, d))
    X /= np.sqrt(np.linalg.eigvalsh(X @ X.T / n).max())
    return X, rng.standard_normal(n)


@claim("linear.init.single", "GD on a linear model from w0 converges to w0 + X^+(y - X w0)", SOURCE + ", Sec. 3", kind="derived")
def single(ctx: Context) -> Measurement:
    with one_thread():
        rng = ctx.generator(offset=601)
        n, d, R = (8, 20, 8) if ctx.quick else (50, 400, 32)
        X, y = _problem(rng, n, d)
        w0 = torch.tensor(rng.standard_normal((R, d)), dtype=ctx.dtype)
        # eta = 1/lambda_max(H) = 1: GD updates lie in range(X^T), so P_perp w0 is kept to rounding; the range
        # part contracts by (1 - lambda_min/lambda_max) per step until the loss is below 1e-30 (|w - w_inf| ~ 1e-15)
        res = train_gd(X, y, [w0[:, None, :]], eta=1.0, steps=200000, tol=1e-30)
        w = res.b.numpy()
        pred = np.array([one_layer_limit(X, y, w0[r].numpy()).b for r in range(R)])
        err = np.max(np.abs(w - pred), axis=1) / np.max(np.abs(pred), axis=1)
        return Measurement(metric="max_r ||w_trained - (w0 + X^+(y - X w0))||_inf / ||.||_inf", value=float(err.max()),
                           tolerance=1e-10, details={"per_run": err, "status": res.status, "steps": res.steps,
                                                     "n_d_R": [n, d, R]})


@claim("linear.init.deep",
       "A balanced depth-N scalar-output linear net (N = 2, 3, 4) converges under GF to X^+ y + kappa P_perp w0, "
       "kappa^(2N/(N-1)) ||w0||^2 = ||X^+ y||^2 + kappa^2 ||P_perp w0||^2; the null-space part keeps w0's direction",
       SOURCE + ", Sec. 4; Arora, Cohen, Hazan 2018, arXiv 1802.06509", kind="derived")
def deep(ctx: Context) -> Measurement:
    with one_thread():
        rng = ctx.generator(offset=602)
        n, d, R, width = (6, 15, 3, 4) if ctx.quick else (20, 100, 8, 16)
        X, y = _problem(rng, n, d)
        per, errs, cos_def = {}, [], []
        for N in (2, 3, 4):
            w0 = torch.tensor(rng.standard_normal((R, d)), dtype=ctx.dtype)
            # DOP853 at rtol 1e-12, stop at relative residual 1e-11: the range part is within ~1e-10 and kappa
            # (a function of |m_inf|) within ~1e-10 of the limit, 1000x under the 1e-7 tolerance
            res = train_gf(X, y, balanced_init(w0, width, N, seed=N), t_max=1e4, rtol=1e-12, atol=1e-14,
                           stop_residual=1e-11)
            w = res.b[-1].numpy()
            e, c, ks = [], [], []
            for r in range(R):
                w0r = w0[r].numpy()
                lim = deep_limit(X, y, w0r, N)
                e.append(float(np.linalg.norm(w[r] - lim.b) / np.linalg.norm(lim.b)))
                pw, p0 = null_projection(X, w[r]), null_projection(X, w0r)
                c.append(float(1 - pw @ p0 / (np.linalg.norm(pw) * np.linalg.norm(p0))))
                ks.append((lim.kappa.value, lim.kappa.residual))
            errs += e
            cos_def += c
            per[f"N={N}"] = {"rel_err": e, "one_minus_cos": c, "kappa_and_residual": ks, "flow": res.status,
                             "t_final": res.t_final, "nfev": res.nfev}
        value = max(max(errs) / 1e-7, max(cos_def) / 1e-9)
        return Measurement(metric="max(rel. error / 1e-7, (1 - cos(P_perp w_inf, P_perp w0)) / 1e-9)", value=value,
                           tolerance=1.0, details={"max_rel_err": max(errs), "max_one_minus_cos": max(cos_def),
                                                   "per_depth": per, "n_d_R_width": [n, d, R, width]})


@claim("linear.init.wide",
       "A depth-3 linear net with standard Gaussian init (N(0, 1/fan_in)) approaches the one-layer solution "
       "w0 + X^+(y - X w0) of its own end-to-end init w0 as the width grows (widths 100, 400, 1600)",
       SOURCE + ", Sec. 5 (wide networks)", kind="empirical")
def wide(ctx: Context) -> Measurement:
    with one_thread():
        rng = ctx.generator(offset=603)
        n, d = (8, 20) if ctx.quick else (20, 100)
        seeds = 3 if ctx.quick else 10
        X, y = _problem(rng, n, d)
        H = torch.tensor(X.T @ X / n, dtype=ctx.dtype)
        widths = [100, 400, 1600]
        per = {}
        means = []
        for h in widths:
            Ws0 = gaussian_init(seeds, d, h, 3, seed=ctx.seed * 1000 + h, dtype=ctx.dtype)
            w0 = end_to_end(Ws0).numpy()
            # GD at eta = 0.5 / lambda_max(K H) with K the end-to-end tangent kernel at init (stable, near GF)
            K = ntk_end_to_end(Ws0)
            lam = torch.linalg.eigvals(K @ H).real.max(dim=1).values
            res = train_gd(X, y, Ws0, eta=0.5 / lam, steps=20000, tol=1e-26)
            w = res.b.numpy()
            dist = []
            for r in range(seeds):
                pred = one_layer_limit(X, y, w0[r]).b
                dist.append(float(np.linalg.norm(w[r] - pred) / np.linalg.norm(pred - w0[r])))
            means.append(float(np.mean(dist)))
            per[f"width={h}"] = {"rel_dist": dist, "mean": means[-1], "sd": float(np.std(dist, ddof=1)),
                                 "status": res.status, "steps": res.steps}
        slope = float(np.polyfit(np.log(widths), np.log(means), 1)[0])
        violations = int(np.sum(np.diff(means) >= 0))
        return Measurement(metric="width steps where the mean distance to the one-layer formula does not fall",
                           value=violations, tolerance=0,
                           details={"per_width": per, "fitted_exponent (dist ~ width^p)": slope,
                                    "distance": "||w_inf - (w0 + X^+(y - X w0))|| / ||X^+(y - X w0)||",
                                    "trainer": "GD, eta = 0.5/lambda_max(K H) at init", "n_d_seeds": [n, d, seeds]})
