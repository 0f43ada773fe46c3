"""A Dask client: an existing scheduler by address, or a LocalCluster of single-threaded worker processes."""
from __future__ import annotations

import multiprocessing
import threading


def connect(scheduler: str | None, workers: int, connect_timeout: float = 5.0, fork: bool = False):
    """A Dask client: an existing scheduler by address, else a LocalCluster of ``workers`` single-threaded processes.

    ``fork``: the local workers start as forks of this process and inherit its imports (torch, sympy, the claims: ~3 s
    per start on 2 cores); only while this process runs no other thread (a fork copies one thread). Workers restarted
    later are spawned.

    Raises ValueError (one line) when the scheduler cannot be reached within ``connect_timeout`` seconds.
    """
    import dask
    from distributed import Client, LocalCluster

    # worker-saturation 1.0: a worker holds only the task it runs, so restarting it for a timeout kills no queued task
    # Dask's MALLOC_TRIM_THRESHOLD_ turns off glibc's dynamic mmap threshold: every torch temporary over 128 KiB is
    # mapped and faulted in afresh (measured: tf.incremental.rank 5 s in-process, 40 s in a worker)
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    # Dask's statistical profiler samples every worker's running thread each 10 ms (measured: quick verify.all 2-3 s
    # slower on 2 cores with it on); nothing here reads its profiles
    dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.worker.daemon": False,
                     "distributed.scheduler.worker-saturation": 1.0, "distributed.nanny.pre-spawn-environ": environ,
                     "distributed.worker.profile.enabled": False})
    if scheduler:
        try:
            return Client(scheduler, timeout=f"{connect_timeout}s"), None
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"argument --scheduler: cannot reach {scheduler!r} within {connect_timeout:g} s "
                             f"({type(exc).__name__})") from None
    forkable = fork and threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
    method = "fork" if forkable else dask.config.get("distributed.worker.multiprocessing-method")
    with dask.config.set({"distributed.worker.multiprocessing-method": method}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=50)
    return Client(cluster), cluster


def disconnect(client, cluster) -> None:
    """Close what :func:`connect` opened (either may be None)."""
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()
