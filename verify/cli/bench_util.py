"""Timing and machine-rate helpers for ``python -m verify.bench``: interleaved medians, matmul/copy ceilings, peak memory."""
from __future__ import annotations

import os
import statistics
import time
from typing import Callable

import numpy as np
import torch


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device="cpu") -> tuple[float, object]:
    sync(device)
    t = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t, out


def interleaved(fns: dict[str, Callable[[], object]], reps: int, device="cpu") -> tuple[dict[str, list[float]], dict]:
    """Run each fn once per repetition, A B A B ... (same process); returns all times and each fn's last output."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    outs: dict = {}
    for _ in range(reps):
        for k, fn in fns.items():
            dt, outs[k] = timed(fn, device)
            times[k].append(dt)
    return times, outs


def median(xs) -> float:
    return float(statistics.median(xs))


def median_ratio(num: list[float], den: list[float], scale: float = 1.0) -> float:
    """Median over repetitions of the per-repetition ratio (each pair measured back to back)."""
    return median([scale * a / b for a, b in zip(num, den)])


def matmul_rate(device, dtype=torch.float64, size: int = 1024, reps: int = 5) -> float:
    """Measured GEMM rate (FLOP/s): median of `reps` square matmuls of `size`."""
    g = torch.Generator(device="cpu").manual_seed(0)
    A = torch.randn(size, size, generator=g, dtype=dtype).to(device)
    B = torch.randn(size, size, generator=g, dtype=dtype).to(device)
    A @ B
    ts = [timed(lambda: A @ B, device)[0] for _ in range(reps)]
    return 2.0 * size**3 / median(ts)


def copy_rate(device, nbytes: int = 256 * 2**20, reps: int = 5) -> float:
    """Measured copy bandwidth (bytes read + written per second) of a large contiguous tensor."""
    src = torch.empty(nbytes // 8, dtype=torch.float64, device=device).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    ts = [timed(lambda: dst.copy_(src), device)[0] for _ in range(reps)]
    return 2.0 * src.numel() * 8 / median(ts)


def _vm(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def exact_rss_for_large_allocations(threshold: int = 64 * 1024) -> bool:
    """glibc: serve every allocation >= threshold by mmap and return it on free (fixed threshold, no dynamic
    growth), so the resident high-water mark tracks the live large tensors; slows allocation, so call last."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, threshold)) and bool(libc.mallopt(-1, threshold))  # M_MMAP_THRESHOLD, M_TRIM
    except (OSError, AttributeError):
        return False


def peak_tensor_bytes(fn: Callable[[], object]) -> int:
    """Peak of the bytes held by tensors that fn creates (each storage counted once, released when the tensor
    that first claimed it is collected): allocator-independent working memory of fn."""
    import weakref

    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    live = {"now": 0, "peak": 0}
    seen: set[int] = set()

    def release(key, nbytes):
        seen.discard(key)
        live["now"] -= nbytes

    class Tracker(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            inputs = {a.untyped_storage().data_ptr() for a in tree_flatten((args, kwargs))[0]
                      if isinstance(a, torch.Tensor)}
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor) and t._base is None:
                    st = t.untyped_storage()
                    key = st.data_ptr()
                    if key and key not in seen and key not in inputs:  # aliases of inputs are not new memory
                        seen.add(key)
                        live["now"] += st.nbytes()
                        live["peak"] = max(live["peak"], live["now"])
                        weakref.finalize(t, release, key, st.nbytes())
            return out

    with Tracker():
        fn()
    return live["peak"]


def peak_memory(fn: Callable[[], object], device="cpu") -> tuple[int | None, str]:
    """Peak memory fn adds above what is live before it: CUDA allocator peak; on CPU the peak of live tensor
    bytes (or, with VERIFY_BENCH_RSS=1, the resident high-water mark VmHWM reset via /proc/self/clear_refs,
    which malloc's reuse of freed memory can hide)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - base), "cuda max_memory_allocated"
    if os.environ.get("VERIFY_BENCH_RSS") != "1":
        return peak_tensor_bytes(fn), "peak live tensor bytes (dispatch-mode accounting)"
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return None, "unavailable (no /proc/self/clear_refs)"
    base = _vm("VmRSS")
    fn()
    hwm = _vm("VmHWM")
    if base is None or hwm is None:
        return None, "unavailable"
    return int(hwm - base), "VmHWM - VmRSS (Linux)"


def loglog_slope(x, y) -> float:
    """Least-squares exponent p in y ~ x^p."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(lx, ly, 1)[0])


def machine() -> dict:
    info = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["load_avg_1m"] = os.getloadavg()[0]
    except OSError:
        pass
    if torch.cuda.is_available():
        info["cuda"] = torch.cuda.get_device_name(0)
    return info
