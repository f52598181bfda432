"""A local dask cluster that cleans up after itself, for notebooks whose cells a reader runs again.

A ``dask.distributed`` cluster is a set of processes: a scheduler and workers.
Made by hand in a notebook cell, it is easy to leak: run the cell again and a
second cluster starts beside the first; stop the notebook on an error and the
cell that closes it never runs. :func:`start_local_cluster` closes the cluster
it started before, if any, before it starts a new one, and closes its cluster
when the Python process exits; :func:`close_local_cluster` closes it now.
:func:`local_client` returns the client of that cluster, and starts the cluster
again, with the same settings, if it was closed since: a notebook cell that
needs the cluster still works when a reader runs it again after the cell that
closed it.

:class:`ReadCountingStore` wraps a Zarr store and counts the chunks read from
it, to measure what a computation really reads. A chunk read after its array
was deleted raises an error instead of reading as the fill value.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zarr.storage import WrapperStore

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["ReadCountingStore", "close_local_cluster", "local_client", "start_local_cluster"]


_METADATA_NAMES = ("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata")


class ReadCountingStore(WrapperStore):
    """A Zarr store that counts every read of a chunk (any key but metadata) from the store it wraps.

    Parameters
    ----------
    store
        The store to read from, e.g. ``zarr.storage.LocalStore(path, read_only=True)``.
    reads
        A :class:`collections.Counter` to count into; a new one by default.

    Attributes
    ----------
    reads
        Reads per key (``"c/0/1/1"``); ``sum(reads.values())`` is the number of reads.

    Raises
    ------
    StoreAccessError
        When a chunk is missing and so is the array's metadata (``zarr.json`` or ``.zarray``):
        the array was deleted after it was opened, and zarr would read its chunks as fill values.

    Examples
    --------
    >>> import tempfile, numpy as np, zarr
    >>> from data_helpers.processing import ReadCountingStore
    >>> folder = tempfile.mkdtemp()
    >>> _ = zarr.create_array(folder, data=np.zeros((64, 64), np.uint8), chunks=(32, 32))
    >>> store = ReadCountingStore(zarr.storage.LocalStore(folder, read_only=True))
    >>> _ = zarr.open_array(store, mode="r")[:40, :10]  # rows 0-39: two chunks down, one across
    >>> sorted(store.reads)
    ['c/0/0', 'c/1/0']
    """

    def __init__(self, store: Any, reads: Counter | None = None) -> None:
        super().__init__(store)
        self.reads: Counter = Counter() if reads is None else reads

    def _with_store(self, store: Any) -> ReadCountingStore:
        # zarr makes new wrappers (read-only views): they count into the same Counter.
        return type(self)(store, self.reads)

    def _count(self, key: str) -> None:
        if key.rsplit("/", 1)[-1] not in _METADATA_NAMES:
            self.reads[key] += 1

    async def _check_not_deleted(self, key: str) -> None:
        """Raise if a missing chunk is missing because the whole array was deleted after opening."""
        if key.rsplit("/", 1)[-1] in _METADATA_NAMES:
            return
        folders = key.split("/")[:-1]
        if "c" in folders:  # Zarr 3: the array's zarr.json sits beside its c/ folder
            at = len(folders) - folders[::-1].index("c") - 1
            candidates = ["/".join([*folders[:at], "zarr.json"])]
        else:  # Zarr 2: the array's .zarray, in the chunk's folder or one above it
            candidates = ["/".join([*folders[:i], ".zarray"]) for i in range(len(folders), -1, -1)]
        for candidate in candidates:
            if await self._store.exists(candidate):
                return  # a chunk never written: the fill value is right
        from data_helpers.storeaccess import StoreAccessError

        raise StoreAccessError(
            f"the array read through this store has no {candidates[0]} any more: it was deleted after it "
            f"was opened, and its chunks would read as fill values. Run the cell that writes it again, "
            f"then the cell that opens it, then this one.")

    async def get(self, key, prototype, byte_range=None):  # noqa: D102 (as zarr's Store.get)
        self._count(key)
        value = await self._store.get(key, prototype, byte_range)
        if value is None:
            await self._check_not_deleted(key)
        return value

    async def get_partial_values(self, prototype, key_ranges):  # noqa: D102
        key_ranges = list(key_ranges)
        for key, _ in key_ranges:
            self._count(key)
        values = await self._store.get_partial_values(prototype, key_ranges)
        for (key, _), value in zip(key_ranges, values):
            if value is None:
                await self._check_not_deleted(key)
        return values

_CURRENT: dict[str, Any] = {}
# The settings of the last start_local_cluster call, for local_client to start the same cluster again.
_SETTINGS: dict[str, Any] = {}


def close_local_cluster() -> bool:
    """Close the client and the cluster that :func:`start_local_cluster` started, if any.

    Returns
    -------
    bool
        ``True`` if a cluster was running and is now closed, ``False`` if there was none.

    Examples
    --------
    >>> from data_helpers.processing import close_local_cluster
    >>> close_local_cluster()  # nothing started: nothing to close
    False
    """
    client, cluster = _CURRENT.pop("client", None), _CURRENT.pop("cluster", None)
    if client is None and cluster is None:
        return False
    try:
        if client is not None:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
    return True


def start_local_cluster(
    n_workers: int = 2,
    *,
    threads_per_worker: int = 1,
    memory_limit: str | int = "512MiB",
    local_directory: str | os.PathLike | None = None,
    dashboard: bool = True,
    **kwargs: Any,
) -> Client:
    """Start a ``LocalCluster`` of worker processes on this machine and return a client connected to it.

    A cluster started earlier by this function in this process is closed first,
    so running a notebook cell again leaves one cluster, not two; the cluster
    is also closed when the process exits (for a notebook: when its kernel
    stops, even after a failed cell). Everything listens on 127.0.0.1 only.

    Parameters
    ----------
    n_workers
        Worker processes (each with its own Python, separate from this one).
    threads_per_worker
        Threads in each worker: tasks it runs at the same time.
    memory_limit
        Memory of each worker (``"512MiB"``, ``"2GiB"`` or bytes). At 60 % of it
        a worker starts to move data to disk (spilling), at 80 % it pauses, and
        at 95 % its nanny restarts it.
    local_directory
        Folder for the workers' files, spilled data among them. Default: a
        folder under the system's temporary folder.
    dashboard
        Serve the diagnostic dashboard on a free port (it needs ``bokeh``;
        without it the cluster runs without a dashboard).
    **kwargs
        Passed on to ``distributed.LocalCluster``.

    Returns
    -------
    distributed.Client
        The client; ``client.cluster`` is the cluster.

    Raises
    ------
    ValueError
        If ``n_workers`` or ``threads_per_worker`` is not a positive integer.

    Examples
    --------
    >>> from data_helpers.processing import close_local_cluster, start_local_cluster
    >>> client = start_local_cluster(1, memory_limit="256MiB", dashboard=False)
    >>> client.submit(sum, [1, 2, 3]).result()
    6
    >>> close_local_cluster()
    True
    """
    from distributed import Client, LocalCluster

    for name, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    close_local_cluster()
    _SETTINGS.clear()
    _SETTINGS.update(n_workers=n_workers, threads_per_worker=threads_per_worker, memory_limit=memory_limit,
                     local_directory=local_directory, dashboard=dashboard, **kwargs)
    if dashboard:
        try:
            import bokeh  # noqa: F401
        except ImportError:
            dashboard = False
    options: dict[str, Any] = {
        "n_workers": n_workers,
        "threads_per_worker": threads_per_worker,
        "memory_limit": memory_limit,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0" if dashboard else None,
        "silence_logs": logging.CRITICAL,  # a worker that loses its scheduler at shutdown logs an ERROR
    }
    if local_directory is not None:
        Path(local_directory).mkdir(parents=True, exist_ok=True)
        options["local_directory"] = os.fspath(local_directory)
    options.update(kwargs)
    cluster = LocalCluster(**options)
    try:
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    _CURRENT.update(client=client, cluster=cluster)
    return client


def _running(client: Any, cluster: Any) -> bool:
    """Whether a client and its cluster can still run tasks."""
    status = getattr(getattr(cluster, "status", None), "name", str(getattr(cluster, "status", "")))
    return client is not None and client.status == "running" and status == "running"


def local_client() -> Client:
    """The client of the cluster that :func:`start_local_cluster` started, started again if it was closed.

    A notebook cell that needs the cluster calls this instead of keeping a client
    from an earlier cell: after :func:`close_local_cluster` (or a lost cluster),
    it starts a new cluster with the settings of the last
    :func:`start_local_cluster` call, so there is still only one.

    Returns
    -------
    distributed.Client
        The running client; ``client.cluster`` is its cluster.

    Raises
    ------
    RuntimeError
        If :func:`start_local_cluster` was not called in this process: run the
        cell that starts the cluster first.

    Examples
    --------
    >>> from data_helpers.processing import close_local_cluster, local_client, start_local_cluster
    >>> first = start_local_cluster(1, memory_limit="256MiB", dashboard=False)
    >>> local_client() is first
    True
    >>> close_local_cluster()
    True
    >>> again = local_client()  # a new cluster, with the same settings
    >>> again is not first, again.submit(sum, [1, 2]).result()
    (True, 3)
    >>> close_local_cluster()
    True
    """
    client, cluster = _CURRENT.get("client"), _CURRENT.get("cluster")
    if _running(client, cluster):
        return client
    if not _SETTINGS:
        raise RuntimeError(
            "no local dask cluster was started in this Python process, so there is none to use or to start "
            "again: run the cell that calls start_local_cluster(...) first, then this one.")
    return start_local_cluster(**_SETTINGS)


atexit.register(close_local_cluster)
