"""A cheap sweep task for tests/test_sweep.py, importable on Dask worker processes (tests/ is on their sys.path).

Each call appends one line to $SWEEP_CALL_LOG (counts calls across processes); a chunk whose first trial equals
``die`` kills its worker process, one whose first trial equals ``fail`` raises (both only while $SWEEP_FAIL_OFF is
unset: set it in the test process before the cluster starts or for in-process reruns).
"""
import os

import numpy as np

from verify.sweeps.engine import Param, SweepTask


def _run(params, trials, seeds):
    log = os.environ.get("SWEEP_CALL_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(f"{params['a']} {trials[0]}-{trials[-1]}\n")
    off = os.environ.get("SWEEP_FAIL_OFF")
    if int(trials[0]) == params["die"] and not off:
        os._exit(3)   # a worker that dies mid-chunk
    if int(trials[0]) == params["fail"] and not off:
        raise RuntimeError(f"chunk at trial {trials[0]} failed on purpose")
    x = np.array([np.random.default_rng(sd).standard_normal(3) for sd in seeds])   # one batched draw per instance
    rows = {"trial": np.repeat(trials, len(params["c"])), "c": np.tile(params["c"], len(trials)),
            "value": (x.sum(axis=1)[:, None] * params["b"] + np.asarray(params["c"])[None, :]).ravel()}
    return rows


TOY = SweepTask(name="toy", help="test task", run=_run,
                params=(Param("a", int, (1, 2)), Param("b", float, (0.5,)), Param("die", int, (-1,)),
                        Param("fail", int, (-1,)), Param("c", float, (0.0, 1.0), vector=True)))
