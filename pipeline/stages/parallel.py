"""The distributed wrapper: map a plain function over partitions with Dask.

The stages' partition functions are ordinary functions of paths and small
arguments; this module only decides where they run:

* ``address == "synchronous"``: in this process, one after another (debugging);
* ``address == ""`` (default): a ``LocalCluster`` of worker processes on this
  machine, started once per process and reused by every task of a Luigi run;
* anything else: the Dask scheduler at that address (workers must see the same
  ``data/`` folder, e.g. a shared file system). Only then does training run on
  the cluster too (``is_cluster``, ``pipeline.stages.train_dask``): the
  in-process model, trained on one machine's whole matrix, stays the default.

Results come back in the order of the partitions, whatever order they finish in,
so the outputs do not depend on scheduling.
"""
from __future__ import annotations

import atexit
import threading
from typing import Any, Callable, Sequence

SYNCHRONOUS = "synchronous"
_lock = threading.Lock()
_clients: dict[tuple, Any] = {}


def is_cluster(address: str) -> bool:
    """Whether ``address`` names a Dask scheduler of its own (not the local default, not 'synchronous')."""
    return address not in ("", SYNCHRONOUS)


def get_client(address: str, n_workers: int = 2, threads_per_worker: int = 1):
    """A Dask client for ``address`` ('' = a local cluster), shared within this process."""
    from dask.distributed import Client, LocalCluster

    key = (address, n_workers, threads_per_worker)
    with _lock:
        client = _clients.get(key)
        if client is not None and client.status == "running":
            return client
        if address:
            client = Client(address, set_as_default=False)
        else:
            cluster = LocalCluster(
                n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                dashboard_address=None, silence_logs=40,
            )
            client = Client(cluster, set_as_default=False)
        _clients[key] = client
        return client


def close_clients() -> None:
    """Close every client (and local cluster) this process started."""
    with _lock:
        for client in _clients.values():
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
        _clients.clear()


atexit.register(close_clients)


def map_partitions(fn: Callable, partitions: Sequence[tuple], address: str = "", n_workers: int = 2,
                   threads_per_worker: int = 1, client=None, **common) -> list:
    """``[fn(*p, **common) for p in partitions]``, run on Dask unless ``address`` is 'synchronous'.

    ``client``: a Dask client to use instead of the one ``address`` names.
    An exception in any partition is raised here, after the remaining
    partitions are cancelled.
    """
    if (client is None and address == SYNCHRONOUS) or len(partitions) == 0:
        return [fn(*p, **common) for p in partitions]
    client = client or get_client(address, n_workers, threads_per_worker)
    common_futures = {k: client.scatter(v, broadcast=True) if _is_large(v) else v for k, v in common.items()}
    futures = [client.submit(fn, *p, **common_futures, pure=False) for p in partitions]
    try:
        return client.gather(futures)
    finally:
        client.cancel(futures)


def _is_large(value) -> bool:
    import pandas as pd

    return isinstance(value, pd.DataFrame) and value.memory_usage(deep=False).sum() > 1 << 20
