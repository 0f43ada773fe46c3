"""Sweeps on Dask: a grid x seeds cut into batched chunks, resumable from chunk files (docs/sweeps.md)."""
from .engine import (Chunk, Param, SweepResult, SweepTask, cell_seed, get_task, load_chunk, plan, register,
                     run_chunk, run_sweep, write_csv)

__all__ = ["Chunk", "Param", "SweepResult", "SweepTask", "cell_seed", "get_task", "load_chunk", "plan",
           "register", "run_chunk", "run_sweep", "write_csv"]
