"""A Dask client: an existing scheduler by address, or a LocalCluster of single-threaded worker processes."""
from __future__ import annotations


def connect(scheduler: str | None, workers: int, connect_timeout: float = 5.0):
    """A Dask client: an existing scheduler by address, else a LocalCluster of ``workers`` single-threaded processes.

    Raises ValueError (one line) when the scheduler cannot be reached within ``connect_timeout`` seconds.
    """
    import dask
    from distributed import Client, LocalCluster

    # worker-saturation 1.0: a worker holds only the task it runs, so restarting it for a timeout kills no queued task
    # Dask's MALLOC_TRIM_THRESHOLD_ turns off glibc's dynamic mmap threshold: every torch temporary over 128 KiB is
    # mapped and faulted in afresh (measured: tf.incremental.rank 5 s in-process, 40 s in a worker)
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.worker.daemon": False,
                     "distributed.scheduler.worker-saturation": 1.0, "distributed.nanny.pre-spawn-environ": environ})
    if scheduler:
        try:
            return Client(scheduler, timeout=f"{connect_timeout}s"), None
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"argument --scheduler: cannot reach {scheduler!r} within {connect_timeout:g} s "
                             f"({type(exc).__name__})") from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=50)
    return Client(cluster), cluster


def disconnect(client, cluster) -> None:
    """Close what :func:`connect` opened (either may be None)."""
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()
