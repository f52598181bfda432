"""data_helpers.processing: a local cluster that never leaks, and a store that counts reads."""

from __future__ import annotations

import dask.array as da
import numpy as np
import psutil
import pytest
import zarr

from data_helpers import chunks_touched
from data_helpers.processing import ReadCountingStore, close_local_cluster, local_client, start_local_cluster


@pytest.fixture
def array_folder(tmp_path):
    data = np.arange(96 * 96 * 96, dtype=np.uint16).reshape(96, 96, 96)
    zarr.create_array(tmp_path / "a.zarr", data=data, chunks=(32, 32, 32))
    return tmp_path / "a.zarr", data


def _open(folder):
    store = ReadCountingStore(zarr.storage.LocalStore(folder, read_only=True))
    return store, zarr.open_array(store, mode="r")


def test_aligned_dask_chunks_read_each_chunk_once(array_folder):
    folder, data = array_folder
    store, array = _open(folder)
    assert int(da.from_zarr(array, chunks=32).sum().compute()) == int(data.sum(dtype=np.int64))
    assert sum(store.reads.values()) == 27 and set(store.reads.values()) == {1}


def test_misaligned_dask_chunks_read_chunks_again(array_folder):
    folder, data = array_folder
    store, array = _open(folder)
    lazy = da.from_zarr(array, chunks=48)  # blocks 0:48 and 48:96 both touch the middle chunk
    assert int(lazy.sum().compute()) == int(data.sum(dtype=np.int64))
    predicted = sum(chunks_touched(data.shape, 32, tuple(slice(i, i + 48) for i in start)).n_chunks
                    for start in np.ndindex(2, 2, 2) for start in [tuple(48 * np.array(start))])
    assert sum(store.reads.values()) == predicted == 64
    assert store.reads["c/1/1/1"] == 8  # the middle chunk, once per block


def test_metadata_reads_are_not_counted(array_folder):
    folder, _ = array_folder
    store, array = _open(folder)
    assert array.shape == (96, 96, 96)
    assert not store.reads


def _workers(me: psutil.Process) -> set[int]:
    """Worker processes alive: started by multiprocessing's spawn (not its resource tracker)."""
    pids = set()
    for p in me.children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(p.cmdline()):
                pids.add(p.pid)
        except psutil.Error:
            pass
    return pids


def test_cluster_started_again_replaces_the_first(tmp_path):
    me = psutil.Process()
    before = _workers(me)
    try:
        first = start_local_cluster(1, memory_limit="300MiB", local_directory=tmp_path / "w1")
        first_workers = _workers(me) - before
        assert len(first_workers) == 1
        second = start_local_cluster(1, memory_limit="300MiB", local_directory=tmp_path / "w2")
        assert first.status == "closed" and first.cluster.status.name == "closed"
        assert second.submit(sum, [1, 2, 3]).result() == 6
        info = second.scheduler_info()["workers"]
        assert [w["memory_limit"] for w in info.values()] == [300 * 2**20]
        assert all(w.startswith("tcp://127.0.0.1:") for w in info)
        assert not first_workers & _workers(me), "the first cluster's worker is still running"
    finally:
        assert close_local_cluster() is True
    assert close_local_cluster() is False
    assert second.status == "closed"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_cluster_needs_positive_worker_counts(bad):
    with pytest.raises(ValueError, match="positive integer"):
        start_local_cluster(bad)
    with pytest.raises(ValueError, match="threads_per_worker"):
        start_local_cluster(1, threads_per_worker=bad)


def test_local_client_returns_the_running_cluster_or_starts_the_same_again(tmp_path):
    me = psutil.Process()
    before = _workers(me)
    try:
        first = start_local_cluster(1, memory_limit="300MiB", local_directory=tmp_path / "w", dashboard=False)
        assert local_client() is first
        assert close_local_cluster() is True
        again = local_client()  # a cell run after the one that closed the cluster
        assert again is not first and first.status == "closed"
        assert again.submit(sum, [1, 2, 3]).result() == 6
        info = again.scheduler_info()["workers"]
        assert [w["memory_limit"] for w in info.values()] == [300 * 2**20]
        assert local_client() is again
        assert len(_workers(me) - before) == 1, "more than one cluster's workers are running"
    finally:
        close_local_cluster()
    assert not _workers(me) - before


def test_local_client_without_a_started_cluster_says_what_to_run(monkeypatch):
    import data_helpers.processing as processing

    monkeypatch.setattr(processing, "_SETTINGS", {})
    monkeypatch.setattr(processing, "_CURRENT", {})
    with pytest.raises(RuntimeError, match="run the cell that calls start_local_cluster"):
        local_client()



@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_store_deleted_after_opening_raises_instead_of_reading_fill_values(tmp_path, zarr_format):
    import shutil

    from data_helpers.storeaccess import StoreAccessError

    root = zarr.open_group(tmp_path / "g.zarr", mode="w", zarr_format=zarr_format)
    root.create_array("0", shape=(64, 64), chunks=(32, 32), dtype=np.uint8, fill_value=7)[:32, :32] = 1
    store = ReadCountingStore(zarr.storage.LocalStore(tmp_path / "g.zarr", read_only=True))
    array = zarr.open_array(store, path="0", mode="r")
    values = array[:]  # three chunks never written: their fill value, no error
    assert (values[:32, :32] == 1).all() and (values[32:] == 7).all()
    shutil.rmtree(tmp_path / "g.zarr" / "0")
    with pytest.raises(StoreAccessError, match="deleted after it was opened"):
        array[:]
