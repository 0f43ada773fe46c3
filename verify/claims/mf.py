"""Matrix factorization claims: commuting sensing, deep end-to-end dynamics, diverging norms, width vs norm."""
from __future__ import annotations

import numpy as np
import torch

from numerics.matrix import (balanced_factors, commuting_limit, commuting_trajectory, effective_rank,
                             integrate_end_to_end, integrate_svd2, min_nuclear_norm, min_trace_commuting,
                             nuclear_norm, nuclear_regularized_completion, nuclear_regularized_cvxpy)
from numerics.compile import compiled
from theory.matrix import commuting, deep, svd2, tracenorm

from ..flow import integrate
from ..plots import figure, save
from ..matrix import (completion_grad, deep_rhs, gd_deep, product, sensing_grad, symmetric_rhs,
                      weight_decay_lbfgs)
from .registry import Context, Measurement, claim

GUNASEKAR = "Gunasekar et al. 2017, arXiv 1705.09280"
ARORA = "Arora, Cohen, Hu, Luo 2019, arXiv 1905.13655"


def _commuting_problem(rng, d, m):
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    a = rng.standard_normal((m, d))
    lam0 = rng.uniform(0.5, 1.5, d)
    A = np.einsum("ij,mj,kj->mik", Q, a, Q)
    return A, a @ lam0


def _rel(X, Y):
    return float(np.linalg.norm(X - Y) / max(np.linalg.norm(Y), 1e-300))


@claim("mf.commuting.limit", "commuting sensing, W = U U^T from alpha I: GF trajectory and limit equal the closed form "
       "Q diag(alpha^2 exp(-4 a^T S)) Q^T", f"{GUNASEKAR}, Sec. 3 / Thm 1", kind="derived")
def commuting_limit_claim(ctx: Context) -> Measurement:
    rng = ctx.generator(offset=401)
    d, m = (6, 3) if ctx.quick else (12, 6)
    A, y = _commuting_problem(rng, d, m)
    alphas = [1e-1, 1e-2, 1e-3]
    commuting()
    t_traj = np.geomspace(0.25, 32.0, 10)
    T_end = 80.0  # slowest linearized rate of the reduced flow is ~1.3 here: e^(-1.3 (80 - 32)) << 1e-12
    t_eval = np.append(t_traj, T_end)
    At, yt = torch.tensor(A, dtype=ctx.dtype, device=ctx.device), torch.tensor(y, dtype=ctx.dtype, device=ctx.device)
    rhs = symmetric_rhs(sensing_grad(At, yt), d)
    U0 = torch.stack([a * torch.eye(d, dtype=ctx.dtype) for a in alphas]).reshape(len(alphas), -1).to(ctx.device)
    runs = {rt: integrate(rhs, U0, t_eval, rtol=rt, atol=1e-16) for rt in (1e-12, 1e-11)}
    res = runs[1e-12]
    details, errs = {"d": d, "m": m, "alphas": alphas, "status": res.status, "nfev": res.nfev}, []
    for k, alpha in enumerate(alphas):
        U = res.states[:, k].reshape(-1, d, d)
        W = U @ U.transpose(0, 2, 1)
        U2 = runs[1e-11].states[:, k].reshape(-1, d, d)
        gerr = max(_rel(U2[i] @ U2[i].T, W[i]) for i in range(len(W)))
        Wt, _, st = commuting_trajectory(A, y, alpha, t_traj)
        e_traj = max(_rel(W[i], Wt[i]) for i in range(len(t_traj)))
        pred = commuting_limit(A, y, alpha)
        e_lim = _rel(W[-1], pred.W)
        resid = float(np.linalg.norm(np.einsum("mij,ij->m", A, W[-1]) - y) / np.linalg.norm(y))
        errs += [e_traj, e_lim]
        details[f"alpha={alpha:g}"] = {"traj_max_rel_err": e_traj, "limit_rel_err": e_lim, "gf_residual_at_T": resid,
                                       "global_error_estimate (rtol 1e-11 vs 1e-12)": gerr,
                                       "newton_iterations": pred.iterations, "newton_residual": pred.residual}
    # Tolerance 1e-8: GF integrated at rtol 1e-12 (global error estimated above, ~1e-10 and below), the
    # reduced m-dim ODE at rtol 1e-13, Newton to 1e-14; the residual at T_end bounds the limit gap.
    return Measurement("max relative error (trajectory at 10 times and limit)", max(errs), 1e-8, details)


@claim("mf.commuting.nuclear", "commuting sensing: as alpha -> 0 the limit tends to the minimum-trace solution, "
       "error ~ alpha^(2(1 - max_off s_j)) with s = a^T nu* the LP dual certificate", f"{GUNASEKAR}, Sec. 3", kind="derived")
def commuting_nuclear_claim(ctx: Context) -> Measurement:
    rng = ctx.generator(offset=402)
    d, m = (8, 3) if ctx.quick else (20, 8)
    A, y = _commuting_problem(rng, d, m)
    Wstar, lam_star, s = min_trace_commuting(A, y)
    off = lam_star < 1e-9
    s_max = float(s[off].max())
    rate = float(compiled(commuting, "rate_small_alpha", ("s",))(s_max))
    alphas = 10.0 ** -np.arange(2, 9)
    Ws = [commuting_limit(A, y, al).W for al in alphas]
    errs = np.array([_rel(W, Wstar) for W in Ws])
    gaps = np.array([np.trace(W) / np.trace(Wstar) - 1 for W in Ws])
    local = np.diff(np.log(errs)) / np.diff(np.log(alphas))
    # The fitted local slope converges to the rate with corrections O(1/L) from the alpha-independent
    # offset v in lambda_j = alpha^2 exp(L s_j + v_j) -- which cancels in the slope -- plus O(alpha^(2 delta))
    # terms; we accept 2% relative, and report every local slope so the convergence is visible.
    value = abs(local[-1] - rate) / rate
    details = {"alphas": alphas, "rel_err_to_min_trace": errs, "trace_gap": gaps, "local_slopes": local,
               "predicted_rate": rate, "s_max_off_support": s_max, "support": np.flatnonzero(~off)}
    return Measurement("relative error of the fitted rate vs 2(1 - s_max)", value, 0.02, details)


FIT_TOL = 1e-6


def _gf_to_fit(rhs, U0, resid, t_max=1e8, tol=1e-8):
    """GF until every run fits to ``tol`` (Radau: near rank-deficient limits the residual decays like 1/t)."""
    return integrate(rhs, U0, np.geomspace(1e-2, t_max, 30), rtol=1e-9, atol=1e-13, method="Radau", stop=resid,
                     stop_below=tol, t_max=t_max)


@claim("mf.sensing.nuclear", "non-commuting (Gaussian) sensing and completion, W = U U^T at small alpha: the gap "
       "||W_GF||_* / min ||W||_* - 1 shrinks as alpha decreases (measured; a conjecture)",
       f"{GUNASEKAR}, Conjecture 1", kind="refuted")
def sensing_nuclear_claim(ctx: Context) -> Measurement:
    d, m = (4, 6) if ctx.quick else (10, 40)
    # Down to 1e-8: on completion seed 2 the gap falls only ~0.03 a decade for alpha >= 1e-4 (a rank-2
    # component of size ~alpha^0.1 survives) and collapses below 1e-6 (measured: 0.16, 0.13, 0.066, 4e-4).
    alphas = [1e-1, 1e-2, 1e-4, 1e-8]
    seeds = 3
    details, violations, unfitted = {"alphas": alphas, "d": d, "m": m, "fit_tol": FIT_TOL}, 0, 0
    for kind in ("gaussian", "completion"):
        gaps, resids = np.zeros((seeds, len(alphas))), np.zeros((seeds, len(alphas)))
        truth_gap, rank_small = np.zeros(seeds), np.zeros(seeds, dtype=int)
        for sd in range(seeds):
            rng = ctx.generator(offset=403 + 17 * sd + (0 if kind == "gaussian" else 1000))
            v = rng.standard_normal((d, 1))
            Wtrue = v @ v.T
            if kind == "gaussian":
                B = rng.standard_normal((m, d, d))
                A = (B + B.transpose(0, 2, 1)) / 2
            else:
                pairs = [(i, j) for i in range(d) for j in range(i, d)]
                pick = rng.choice(len(pairs), size=m + 2, replace=False)
                A = np.zeros((len(pick), d, d))
                for k, p in enumerate(pick):
                    i, j = pairs[p]
                    A[k, i, j] = A[k, j, i] = 1.0
            y = np.einsum("mij,ij->m", A, Wtrue)
            Wnuc, _ = min_nuclear_norm(A, y, psd=True)
            At = torch.tensor(A, dtype=ctx.dtype, device=ctx.device)
            yt = torch.tensor(y, dtype=ctx.dtype, device=ctx.device)
            rhs = symmetric_rhs(sensing_grad(At, yt), d)
            U0 = torch.stack([a * torch.eye(d, dtype=ctx.dtype) for a in alphas]).reshape(len(alphas), -1)

            def resid(th):
                U = th.reshape(-1, d, d)
                return (torch.einsum("mij,rij->rm", At, U @ U.transpose(1, 2)) - yt).norm(dim=1) / yt.norm()
            res = _gf_to_fit(rhs, U0.to(ctx.device), resid)
            final = torch.as_tensor(res.states[-1])
            U = final.reshape(-1, d, d)
            resids[sd] = resid(final).cpu().numpy()
            for k in range(len(alphas)):
                gaps[sd, k] = nuclear_norm((U[k] @ U[k].T).cpu().numpy()) / nuclear_norm(Wnuc) - 1
            truth_gap[sd] = nuclear_norm(Wtrue) / nuclear_norm(Wnuc) - 1
            ev = np.linalg.eigvalsh((U[-1] @ U[-1].T).cpu().numpy())
            rank_small[sd] = int(np.sum(ev > 1e-6 * ev[-1]))
        # A run that has not fitted to FIT_TOL is not at its limit: its gap is not a measurement of the limit.
        fitted = resids <= FIT_TOL
        unfitted += int((~fitted).sum())
        gaps = np.where(fitted, gaps, np.nan)
        mean, std = np.nanmean(gaps, 0), np.nanstd(gaps, 0)
        # Bound: the conjecture predicts gap -> 0 as alpha -> 0; for commuting sensing the gap is
        # O(alpha^(2(1-s_max))) (mf.commuting.nuclear). The measured row passes if the mean gap decreases
        # with alpha at every decade and the largest gap at the smallest alpha is below the mean gap at
        # the largest alpha -- a falsifiable "shrinking" criterion, not a proof.
        violations += int(np.sum(~(np.diff(mean) < 0))) + int(not np.nanmax(gaps[:, -1]) < mean[0])
        # Where the gap stalls, compare: the rank-1 truth's own gap (GF found the minimum-rank, not the
        # minimum-nuclear, interpolator) and the GF solution's rank at the smallest alpha (a rank-2 limit).
        details[kind] = {"gap_per_seed": gaps, "gap_mean": mean, "gap_std": std, "fit_residual": resids,
                         "rank1_truth_gap_per_seed": truth_gap, "gf_rank_at_smallest_alpha": rank_small,
                         "fitted_exponent_p (gap ~ alpha^p)": float(np.polyfit(np.log(alphas), np.log(np.abs(mean) + 1e-300), 1)[0])}
    details["runs not fitted to fit_tol by t = 1e8"] = unfitted
    return Measurement("violations of 'gap shrinks with alpha' + runs not fitted (count)", violations + unfitted, 0,
                       details)


@claim("mf.deep.endtoend", "depth N = 2, 3, 4, balanced init: the N-factor GF end-to-end matrix and its singular "
       "values follow the end-to-end ODE and the singular-value ODE", f"{ARORA}, Thm 1 and Thm 3", kind="derived")
def deep_endtoend_claim(ctx: Context) -> Measurement:
    rng = ctx.generator(offset=404)
    d, m = (4, 10) if ctx.quick else (8, 40)
    A = rng.standard_normal((m, d, d))
    y = np.einsum("mij,ij->m", A, rng.standard_normal((d, 1)) @ rng.standard_normal((1, d)))
    At, yt = torch.tensor(A, dtype=ctx.dtype), torch.tensor(y, dtype=ctx.dtype)
    gW = sensing_grad(At, yt)
    t_eval = np.linspace(0.5, 20.0, 40)
    details, errs = {}, []
    fig, axes = figure(3, 4.0, 3.5)
    for ax, N in zip(axes, (2, 3, 4)):
        deep(N)
        W0 = 0.5 * rng.standard_normal((d, d)) / np.sqrt(d)
        fac = balanced_factors(W0, N, rng)
        th0 = torch.tensor(np.stack(fac)[None], dtype=ctx.dtype).reshape(1, -1)
        rhs = deep_rhs(gW, N, d)
        runs = {rt: integrate(rhs, th0, t_eval, rtol=rt, atol=1e-14) for rt in (1e-12, 1e-11)}
        Wtr = product(torch.tensor(runs[1e-12].states[:, 0].reshape(-1, N, d, d)))
        Wtr2 = product(torch.tensor(runs[1e-11].states[:, 0].reshape(-1, N, d, d)))
        pred = integrate_end_to_end(fac, lambda W: gW(torch.tensor(W)[None])[0].numpy(), t_eval)
        eW = max(_rel(Wtr[i].numpy(), pred.W[i]) for i in range(len(t_eval)))
        sig_tr = np.linalg.svd(Wtr.numpy(), compute_uv=False)
        eS = float(np.max(np.abs(sig_tr - pred.sigma) / np.linalg.norm(pred.sigma, axis=1, keepdims=True)))
        gerr = max(_rel(Wtr2[i].numpy(), Wtr[i].numpy()) for i in range(len(t_eval)))
        errs += [eW, eS]
        details[f"N={N}"] = {"W_max_rel_err": eW, "sigma_max_rel_err": eS, "gf_global_error_estimate": gerr,
                             "ode_status": pred.status, "final_loss": float(0.5 * np.mean(
                                 (np.einsum("mij,ij->m", A, pred.W[-1]) - y) ** 2))}
        ax.semilogy(t_eval, sig_tr, "k-", lw=2, alpha=0.4)
        ax.semilogy(t_eval, pred.sigma, "r--", lw=1)
        ax.set_title(f"N={N}: trained (grey) vs ODE (red)")
        ax.set_xlabel("t")
    path = save(fig, ctx.plot_path("mf_deep_singular_values.png"))
    # 1e-7: both sides integrated at rtol 1e-12 (DOP853); the global error estimate is reported per depth.
    return Measurement("max relative error (W and sigma, whole trajectory)", max(errs), 1e-7, details, [str(path)])


def _completion_2x2():
    mask = np.array([[0.0, 1.0], [1.0, 1.0]])
    M = np.array([[0.0, 1.0], [1.0, 0.0]])
    return mask, M


@claim("mf.norms.divergence", "2x2 completion (W12 = W21 = 1, W22 = 0), depth 2 and 3, det W(0) > 0: det keeps its "
       "sign, |W11| ~ loss^(-1/2) -> inf, Schatten norms grow, effective rank falls; det W(0) < 0 converges",
       "Razin & Cohen 2020, arXiv 2005.06398, Sec. 3", kind="derived")
def norms_divergence_claim(ctx: Context) -> Measurement:
    mask, M = _completion_2x2()
    n_obs = mask.sum()
    grad = lambda W: mask * (W - M) / n_obs  # noqa: E731
    loss = lambda W: 0.5 * np.sum((mask * (W - M)) ** 2) / n_obs  # noqa: E731
    W_pos = 0.1 * np.array([[1.0, 0.2], [-0.3, 0.7]])
    W_neg = 0.1 * np.array([[0.2, 1.0], [0.7, -0.3]])
    t_eval = np.geomspace(1e-1, 1e5 if ctx.quick else 1e8, 120)
    details, viol = {}, 0
    fig, axes = figure(2, 5.0, 3.8)
    for N, ax in zip((2, 3), axes):
        svd2(N); deep(N)
        fl = integrate_svd2(W_pos, grad, N, t_eval)
        Ls = np.array([loss(W) for W in fl.W])
        x = np.abs(fl.W[:, 0, 0])
        nuc = np.array([nuclear_norm(W) for W in fl.W])
        fro = np.linalg.norm(fl.W, axis=(1, 2))
        op = np.array([np.linalg.svd(W, compute_uv=False)[0] for W in fl.W])
        er = np.array([effective_rank(W) for W in fl.W])
        dets = np.linalg.det(fl.W)
        tail = slice(len(t_eval) // 2, None)
        p = float(np.polyfit(np.log(Ls[tail]), np.log(x[tail]), 1)[0])
        expo = float(svd2(N)["growth_exponent"])
        conds = {"status ok": fl.status == "ok",
                 # det computed from the float W carries rounding ~ eps sigma1^2, so its recomputed sign is
                 # checked where |det| > 1e-12 sigma1^2; ln|det| (a state) must stay finite everywhere.
                 "det sign constant (recomputed from W where resolvable)": bool(np.all(
                     np.sign(dets[np.abs(dets) > 1e-12 * op**2]) == fl.sign_det))
                 and bool(np.all(np.isfinite(fl.logabsdet))),
                 "loss decreasing": bool(np.all(np.diff(Ls[tail]) < 0)),
                 "|W11| increasing": bool(np.all(np.diff(x[tail]) > 0)),
                 "nuclear, Frobenius, operator norms increasing": bool(all(np.all(np.diff(v[tail]) > 0) for v in (nuc, fro, op))),
                 "effective rank non-increasing (1 ulp)": bool(np.all(np.diff(er[tail]) <= 1e-15)),
                 # exponent from the boundary analysis (svd2: x^2 L_min -> 1/2): fitted within 0.05
                 "growth exponent within 0.05 of -1/2": abs(p - expo) < 0.05}
        viol += sum(not v for v in conds.values())
        details[f"N={N}, det>0"] = {"conditions": conds, "fitted exponent |W11| ~ loss^p": p, "predicted": expo,
                                    "final |W11|": x[-1], "final loss": Ls[-1], "final ln|det|": fl.logabsdet[-1],
                                    "final effective rank": er[-1]}
        ax.loglog(Ls, x, label="|W11|"); ax.loglog(Ls, nuc, "--", label="nuclear")
        ax.loglog(Ls, fro, ":", label="Frobenius"); ax.invert_xaxis()
        ax.set_xlabel("loss"); ax.set_title(f"depth {N}, det W(0) > 0"); ax.legend(fontsize=7)
        # det < 0: the end-to-end ODE on W converges to a finite solution.
        fac = balanced_factors(W_neg, N)
        pe = integrate_end_to_end(fac, grad, np.array([1e3, 1e4]), rtol=1e-10, atol=1e-13)
        conv = _rel(pe.W[-1], pe.W[0])
        cn = {"converged (||W(1e4) - W(1e3)|| / ||W|| < 1e-6)": conv < 1e-6, "loss < 1e-12": loss(pe.W[-1]) < 1e-12}
        viol += sum(not v for v in cn.values())
        details[f"N={N}, det<0"] = {"conditions": cn, "W_final": pe.W[-1], "change": conv}
        # Measured finding: factor GF with DOP853 at rtol 1e-12 and GD (eta 0.05) on the same det > 0 init.
        facp = balanced_factors(W_pos, N)
        th0 = torch.tensor(np.stack(facp)[None]).reshape(1, -1)
        gt = completion_grad(torch.tensor(mask), torch.tensor(M))
        tn = np.geomspace(1e-1, 1e3, 100)
        naive = integrate(deep_rhs(gt, N, 2), th0, tn, rtol=1e-12, atol=1e-14)
        dn = np.linalg.det(product(torch.tensor(naive.states[:, 0].reshape(-1, N, 2, 2))).numpy())
        cross = np.flatnonzero(np.sign(dn) != np.sign(dn[0]))
        Ws_gd, st, hist = gd_deep(torch.tensor(np.stack(facp)[None]), gt, 0.05, 20000, record=100)
        dg = np.array([np.linalg.det(h[0].numpy()) for h in hist])
        cg = np.flatnonzero(np.sign(dg) != np.sign(dg[0]))
        details[f"N={N}, naive integrators (finding)"] = {
            "DOP853 rtol 1e-12 on factors: first det sign change at t": float(tn[cross[0]]) if len(cross) else None,
            "GD eta 0.05: first det sign change at step": int(cg[0] * 100) if len(cg) else None,
            "GD status": st[0]}
    path = save(fig, ctx.plot_path("mf_norms_divergence.png"))
    return Measurement("violated conditions (count)", viol, 0, details, [str(path)])


@claim("mf.tracenorm.identity", "||W||_* = min_{U V^T = W} (||U||_F^2 + ||V||_F^2)/2: proved for 2x2, attained by "
       "SVD-balanced factors and exceeded by other factorizations of drawn matrices",
       "Srebro et al. 2005; Neyshabur, Tomioka, Srebro 2014, arXiv 1412.6614", kind="derived")
def tracenorm_claim(ctx: Context) -> Measurement:
    d = tracenorm()
    rng = ctx.generator(offset=405)
    att, exceed_viol, excess = [], 0, []
    for _ in range(20 if ctx.quick else 200):
        n1, n2, r = rng.integers(2, 8), rng.integers(2, 8), 0
        r = int(rng.integers(1, min(n1, n2) + 1))
        W = rng.standard_normal((n1, r)) @ rng.standard_normal((r, n2))
        U, s, Vt = np.linalg.svd(W, full_matrices=False)
        Ub, Vb = U * np.sqrt(s), Vt.T * np.sqrt(s)
        nuc = s.sum()
        att.append(abs((np.sum(Ub**2) + np.sum(Vb**2)) / 2 - nuc) / nuc)
        for _ in range(5):
            Rm = rng.standard_normal((len(s), len(s)))
            U2, V2 = Ub @ Rm, Vb @ np.linalg.inv(Rm).T
            cost = (np.sum(U2**2) + np.sum(V2**2)) / 2
            excess.append(cost / nuc - 1)
            exceed_viol += int(cost < nuc * (1 - 1e-12))
    # 1e-12: attained value is a sum of squares of float64 SVD factors (error a few ulp times the rank).
    value = max(att) + exceed_viol
    return Measurement("max relative gap of SVD-balanced factors (+ count of factorizations below ||W||_*)", value,
                       1e-12, {"symbolic identities (2x2)": d.identities, "max_attained_gap": max(att),
                               "random factorizations below the nuclear norm": exceed_viol,
                               "min excess of random factorizations": min(excess)})


@claim("mf.width.weightdecay", "weight-decayed U V^T of width k >= rank(convex solution) equals the nuclear-norm "
       "regularized completion; test error is flat in k; below that rank it is not",
       "Srebro et al. 2005; Neyshabur et al. 2014, arXiv 1412.6614; THEORY §3", kind="derived")
def width_claim(ctx: Context) -> Measurement:
    rng = ctx.generator(offset=406)
    n, r0 = (10, 3) if ctx.quick else (30, 5)
    M = rng.standard_normal((n, r0)) @ rng.standard_normal((r0, n))
    mask = (rng.random((n, n)) < 0.6).astype(float)
    lam = 1.0
    cvx = nuclear_regularized_completion(mask, M, lam)
    Wc, objc = nuclear_regularized_cvxpy(mask, M, lam)
    r = cvx.rank
    test = lambda W: float(np.linalg.norm((1 - mask) * (W - M)) / np.linalg.norm((1 - mask) * M))  # noqa: E731
    ks = list(range(1, r + 3))
    errs, tests, gnorms = [], [], []
    for k in ks:
        W, gn, _ = weight_decay_lbfgs(mask, M, lam, k, rng)
        errs.append(_rel(W, cvx.W)); tests.append(test(W)); gnorms.append(gn)
    errs = np.array(errs)
    below_ok = bool(np.all(errs[: r - 1] > 1e-3))
    # 1e-6: L-BFGS stops at ||grad|| ~ 1e-10 (reported); the convex solution is a strict minimizer on the
    # rank-r manifold and the extra columns are damped at rate lam - ||dual certificate's (r+1)th sv||, so the
    # distance is ~ ||grad|| / curvature, orders below 1e-6; SVT's fixed-point residual is reported too.
    value = float(errs[r - 1:].max()) + (0.0 if below_ok else 1.0)
    fig, (ax,) = figure(1, 5.0, 3.5)
    ax.plot(ks, tests, "o-", label="factorization"); ax.axhline(test(cvx.W), color="r", ls="--", label="convex (SVT)")
    ax.axvline(r, color="k", ls=":"); ax.set_xlabel("width k"); ax.set_ylabel("test error"); ax.legend()
    path = save(fig, ctx.plot_path("mf_width_test_error.png"))
    return Measurement("max relative distance to the convex solution for k >= rank (+1 if k < rank matches)", value,
                       1e-6, {"rank_convex": r, "ks": ks, "rel_dist": errs, "test_error": tests, "grad_norms": gnorms,
                              "svt_kkt": cvx.kkt, "svt_status": cvx.status, "svt_vs_cvxpy": _rel(Wc, cvx.W),
                              "svt_iterations": cvx.iterations,
                              "k < rank differ by > 1e-3": below_ok}, [str(path)])


@claim("mf.deep.lowrank", "matrix completion from equal small init: effective rank of the GD solution decreases with "
       "depth N = 1, 2, 3; reconstruction error per depth (mean, std over seeds)", f"{ARORA}, Sec. 4 / Fig. 1", kind="empirical")
def deep_lowrank_claim(ctx: Context) -> Measurement:
    n, r0, frac = (30, 3, 0.3) if ctx.quick else (100, 5, 0.3)
    seeds, alpha = 3, 0.05
    rng = ctx.generator(offset=407)
    Ms, masks = [], []
    for _ in range(seeds):
        M = rng.standard_normal((n, r0)) @ rng.standard_normal((r0, n))
        Ms.append(M / np.linalg.norm(M, 2)); masks.append((rng.random((n, n)) < frac).astype(float))
    Mt, Kt = torch.tensor(np.stack(Ms)), torch.tensor(np.stack(masks))
    grad = lambda W: Kt * (W - Mt)  # noqa: E731
    details, eranks = {}, []
    for N in (1, 2, 3):
        Ws0 = torch.tensor(np.stack([[alpha * np.linalg.qr(rng.standard_normal((n, n)))[0] for _ in range(N)]
                                     for _ in range(seeds)]))
        steps = 3000 if N < 3 else 6000
        Ws, st, _ = gd_deep(Ws0, grad, 0.5, steps)
        W = product(Ws).numpy()
        er = np.array([effective_rank(w) for w in W])
        rec = np.array([np.linalg.norm(W[i] - Ms[i]) / np.linalg.norm(Ms[i]) for i in range(seeds)])
        fit = np.array([np.linalg.norm(masks[i] * (W[i] - Ms[i])) / np.linalg.norm(masks[i] * Ms[i]) for i in range(seeds)])
        eranks.append(er.mean())
        details[f"N={N}"] = {"effective_rank_mean": er.mean(), "effective_rank_std": er.std(),
                             "reconstruction_err_mean": rec.mean(), "reconstruction_err_std": rec.std(),
                             "train_fit_rel": fit, "status": st, "steps": steps}
    viol = int(np.sum(np.diff(eranks) >= 0))
    return Measurement("violations of 'effective rank decreases with depth' (count)", viol, 0, details)
