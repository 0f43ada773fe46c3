"""``python -m verify.bench``: measured speed ratios (issue 7), written to bench.json and printed as a table.

Every figure is a ratio of times measured in this process, A and B interleaved, median over repetitions.
Exit status is non-zero only if a benchmark could not run; timings are never pass/fail.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from . import bench_cases as bc
from .bench_util import machine
from verify.train.device import pick_device
from verify.files import write_atomic
from .report import environment


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m verify.bench", description=__doc__)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="quick", action="store_true", default=True, help="quick sizes (default)")
    size.add_argument("--full", dest="quick", action="store_false",
                      help="larger sizes; with CUDA adds a GPU-saturating sweep of tens of thousands of runs")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("."), help="directory for bench.json (default: current)")
    p.add_argument("--only", default="", help="comma-separated subset of: batched,predictor,sweep,flow,stats,roofline,scaling,memory,full,fused,cp")
    p.add_argument("--threads", default="auto",
                   help="torch CPU threads: an integer, or auto = 1 when the 1-min load exceeds the cores, else torch's default")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke-test sizes
    return p.parse_args(argv)


def sizes(quick: bool, tiny: bool, device: torch.device) -> bc.Sizes:
    if tiny:
        return bc.Sizes(R=8, n=5, d=12, steps=30, loop_subset=2, reps=2, slsqp_seconds=0.5,
                        scale_R=(1, 4, 16), scale_d=(10, 20, 40), scale_d_R=2)
    if quick:
        return bc.Sizes()
    cuda = device.type == "cuda"
    return bc.Sizes(loop_subset=32, reps=5, slsqp_seconds=120.0,
                    scale_R=(1, 4, 16, 64, 256, 1024, 4096, 16384, 65536) if cuda else bc.Sizes.scale_R,
                    scale_d_R=256 if cuda else 16, full_R=32768 if cuda else 0)


def set_threads(spec: str) -> dict:
    """On an oversubscribed CPU, OpenMP barriers across descheduled threads cost milliseconds per op (measured
    here: 30-60x slower small-network steps with 2 threads at load 5-7 on 2 cores); auto then uses one thread."""
    default = torch.get_num_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if spec == "auto":
        n = 1 if load > (os.cpu_count() or 1) else default
    else:
        n = int(spec)
        if n < 1:
            raise ValueError(f"--threads must be >= 1 or 'auto', got {spec!r}")
    torch.set_num_threads(n)
    return {"torch_threads": n, "default": default, "load_avg_1m_at_start": load, "rule": spec}


def _fmt(x, spec=".3g") -> str:
    return "-" if x is None else format(x, spec)


def _finished(res: dict, key: str) -> dict | None:
    """A figure's result if it ran without error, else None (the table skips it)."""
    f = res.get(key)
    return f if f and "error" not in f else None


def table(res: dict) -> Table:
    t = Table(title="python -m verify.bench (ratios measured in one process, interleaved, median)")
    for c in ("figure", "measured", "goal", "details"):
        t.add_column(c)
    if f := _finished(res, "batched"):
        t.add_row("1 batched 256 DLN vs per-net loop", f"{f['ratio']:.1f}x", ">= 50x",
                  f"f32 {f['ratio_f32']:.1f}x, shared X {f['ratio_shared_X']:.1f}x; loop extrapolated")
    if f := _finished(res, "predictor"):
        t.add_row("2 dual Newton vs SLSQP (time)", f"{f['time_ratio']:.0f}x", ">= 100x",
                  f"SLSQP {f['slsqp']['iterations']} it: {f['slsqp']['message']}")
        t.add_row("2 dual Newton vs SLSQP (KKT)", f"{f['kkt_ratio']:.2g}x", ">= 1e4x",
                  f"KKT {f['newton']['kkt']:.1e} vs {f['slsqp']['kkt']:.1e}")
    if f := _finished(res, "sweep"):
        t.add_row("2b batched sweep predictor vs flow_limit loop", f"{f['ratio']:.1f}x", "-",
                  f"{f['converged']}/{f['solves']} converged, max rel diff {f['max_rel_diff']:.1e}")
    if f := _finished(res, "flow"):
        t.add_row("3 GF integrator (1e-8) vs GD (1e-4)", f"{f['time_ratio_gd_over_gf']:.1f}x", "-",
                  f"errors {f['gf']['rel_err_vs_dual_newton']:.1e} / {f['gd']['rel_err_vs_dual_newton']:.1e},"
                  f" eta {f['gd']['eta']:.1e}")
    if f := _finished(res, "stats"):
        for case, c in f.items():
            if isinstance(c, dict):
                z = c["sizes"]
                t.add_row(f"3b exact-GD statistics, blocked vs per step (R={z['R']}, d={z['d']})",
                          f"{c['speedup_blocked']:.1f}x", "-",
                          f"overhead over plain GD {c['overhead_blocked']:.0%} (per step {c['overhead_per_step']:.0%}),"
                          f" max |d log c| {c['max_abs_log_c_diff']:.1e}")
    if f := _finished(res, "roofline"):
        for c in f["cases"]:
            t.add_row("4 roofline " + c["case"], f"{c['roofline_fraction']:.2f}",
                      "-", f"{c['gflops']:.2f} GFLOP/s ({c['flop_fraction']:.1%} of GEMM {f['matmul_gflops_f64']:.0f}),"
                      f" {c['gbytes_per_s']:.2f} GB/s ({c['bandwidth_fraction']:.1%} of copy {f['copy_gbytes_per_s']:.1f})")
    if f := _finished(res, "scaling"):
        t.add_row("5 time/step vs R (exponent)", f"{f['exponent_R_large']:.2f}", "-",
                  f"all R: {f['exponent_R_all']:.2f}; R = {f['vs_R'][0]['R']}..{f['vs_R'][-1]['R']}")
        t.add_row("5 time/step vs d (exponent)", f"{f['exponent_d_large']:.2f}", "-",
                  f"all d: {f['exponent_d_all']:.2f}; d = {f['vs_d'][0]['d']}..{f['vs_d'][-1]['d']}")
    if f := _finished(res, "memory"):
        per = [(r["R"], r["peak_bytes_per_run"]) for r in f["rows"] if r["peak_bytes_per_run"]]
        t.add_row("5 peak memory vs R (exponent)", _fmt(f["exponent_R"], ".2f"), "1 (linear)",
                  "kB/run: " + ", ".join(f"R={R}: {b / 1e3:.1f}" for R, b in per) + f" ({f['method']})")
    if f := _finished(res, "fused"):
        t.add_row("6 fused CPU trainer vs batched einsum (1 thread)", f"{f['ratio_vs_einsum']:.1f}x", ">= 2x",
                  f"vs einsum+GDStats {f['ratio_vs_einsum_stats']:.1f}x, no stats"
                  f" {f['ratio_no_stats_vs_einsum']:.1f}x; params {f['max_rel_params_vs_einsum']:.0e},"
                  f" log c {f['max_abs_log_c_vs_gdstats']:.0e}")
        t.add_row("6 fused CPU trainer vs autograd loop (1 thread)", f"{f['ratio_vs_loop']:.0f}x",
                  f">= {f['goal_vs_loop']:.0f}x",
                  f"einsum vs loop {f['ratio_einsum_vs_loop']:.0f}x; loop extrapolated")
        t.add_row("6 fused CPU trainer, fraction of f64 GEMM", f"{f['peak_fraction']:.1%}", "-",
                  f"{f['gflops_fused']:.1f} GFLOP/s (4nd per run-step); no stats {f['peak_fraction_no_stats']:.1%};"
                  f" 1-thread GEMM {f['matmul_gflops_f64_one_thread']:.0f} GFLOP/s (2048^2, interleaved)")
    if f := _finished(res, "cp"):
        for c in f["cases"]:
            t.add_row(f"7 CP gradient dense vs gather (order {c['order']}, d={c['dim']}, |Omega|={c['n_obs']},"
                      f" R={c['R']})", f"{c['ratio_gather_over_dense']:.1f}x", "-",
                      f"auto picks {c['auto']}; dense {c['dense_gflops']:.1f} GFLOP/s;"
                      f" max rel diff {c['max_rel_diff']:.0e}")
    if f := _finished(res, "full"):
        t.add_row(f"full sweep R={f['R']}", f"{f['f64']['run_steps_per_s']:.3g} run-steps/s", "-",
                  f"f32 {f['f32']['run_steps_per_s']:.3g}; {f['f64']['gbytes_per_s']:.0f} GB/s f64")
    for k, v in res.items():
        if isinstance(v, dict) and "error" in v:
            t.add_row(k, "[magenta]error[/]", "-", v["error"][:100])
    return t


def main(argv=None) -> int:
    args = parse_args(argv)
    console = Console()
    device = pick_device(args.device)
    sz = sizes(args.quick, args.tiny, device)
    threads = set_threads(args.threads)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    want = lambda k: not only or k in only  # noqa: E731
    t0 = time.perf_counter()
    res: dict = {}

    def run(key, fn):
        if not want(key):
            return
        console.print(f"[bold]{key}[/] ...")
        t = time.perf_counter()
        try:
            res[key] = fn()
            res[key]["bench_seconds"] = time.perf_counter() - t
        except Exception as e:  # a benchmark that cannot run is recorded and sets the exit status
            res[key] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        console.print(f"  done in {time.perf_counter() - t:.1f} s")

    run("batched", lambda: bc.fig1_batched_vs_loop(sz, args.seed, device))
    run("predictor", lambda: bc.fig2_predictor_vs_slsqp(sz, args.seed, *((10, 60) if args.tiny else ())))
    run("sweep", lambda: bc.fig_sweep_predictor(sz, args.seed, *((3, 5, 12, 3) if args.tiny else ())))
    run("flow", lambda: bc.fig3_flow_vs_gd(sz, args.seed, *((4, 8) if args.tiny else ())))
    run("stats", lambda: bc.fig_exact_stats(sz, args.seed, device))
    run("scaling", lambda: bc.fig5_scaling(sz, device, *((5, 12) if args.tiny else ())))
    run("roofline", lambda: bc.fig4_roofline(res.get("batched"), res.get("scaling"), device))
    run("fused", lambda: bc.fig_fused_cpu(sz, args.seed))
    run("cp", lambda: bc.fig_cp_gradient(sz, args.seed, *(((3, 10, 100, 8), (4, 6, 100, 8)),) if args.tiny else ()))
    run("memory", lambda: bc.memory_vs_R([R for R in sz.scale_R if R >= 64] or list(sz.scale_R), device))
    if sz.full_R:
        run("full", lambda: bc.full_sweep(sz.full_R, device))
    payload = {"environment": environment(str(device), args.seed, args.quick), "machine": machine(),
               "threads": threads,
               "total_seconds": time.perf_counter() - t0, "results": res}
    if sz.full_R == 0 and not args.quick:
        payload["full_sweep"] = "skipped: no CUDA device"
    out = args.out / "bench.json"
    write_atomic(out, payload)
    console.print(table(res))
    console.print(f"wrote {out} in {payload['total_seconds']:.0f} s")
    return 1 if any(isinstance(v, dict) and "error" in v for v in res.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
