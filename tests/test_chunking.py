"""data_helpers.chunking: counts, read costs and suggested shapes."""

import itertools

import numpy as np
import pytest
import zarr

from data_helpers import chunk_layout, chunks_touched, format_bytes, suggest_chunk_shape


def test_layout_counts_match_what_zarr_writes(tmp_path):
    shape, chunks = (20, 33, 7), (8, 10, 7)
    layout = chunk_layout(shape, chunks, "uint16")
    arr = zarr.create_array(tmp_path / "a.zarr", shape=shape, chunks=chunks, dtype="uint16", zarr_format=3)
    arr[:] = 1
    assert layout.grid == arr.cdata_shape == (3, 4, 1)
    assert layout.n_chunks == arr.nchunks == 12
    chunk_files = [p for p in (tmp_path / "a.zarr" / "c").rglob("*") if p.is_file()]
    assert layout.n_files == len(chunk_files)
    assert layout.chunk_nbytes == 8 * 10 * 7 * 2


def test_layout_with_shards_counts_shard_files(tmp_path):
    shape = (64, 64, 64)
    layout = chunk_layout(shape, 8, "uint8", shards=32)
    arr = zarr.create_array(tmp_path / "s.zarr", shape=shape, chunks=(8,) * 3, shards=(32,) * 3, dtype="uint8")
    arr[:] = 1
    files = [p for p in (tmp_path / "s.zarr" / "c").rglob("*") if p.is_file()]
    assert layout.n_chunks == 512 and layout.n_files == len(files) == 8


def test_chunks_longer_than_the_array_are_clipped():
    assert chunk_layout((10, 10), (64, 64), "uint8").chunks == (10, 10)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(shape=(10, 10), chunks=(5, 5, 5)), "has 3 dimensions but the array has 2"),
        (dict(shape=(10, 10), chunks=(0, 5)), "at least 1"),
        (dict(shape=(64, 64), chunks=(8, 8), shards=(12, 8)), "multiple of the chunk length"),
        (dict(shape="abc", chunks=(1,)), "integers"),
    ],
)
def test_layout_rejects_bad_shapes(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        chunk_layout(**kwargs)


def _touched_by_brute_force(shape, chunks, selection):
    """Chunks whose box intersects the selection, by checking every chunk."""
    probe = np.zeros(shape, bool)
    probe[selection] = True
    count = 0
    for idx in itertools.product(*(range(-(-n // c)) for n, c in zip(shape, chunks))):
        box = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, chunks))
        count += bool(probe[box].any())
    return count


@pytest.mark.parametrize(
    "selection",
    [np.s_[5, :, :], np.s_[:, 7, :], np.s_[..., 3], np.s_[2:19, 3:4, 0:6], np.s_[-1], np.s_[:]],
)
@pytest.mark.parametrize("chunks", [(4, 4, 4), (1, 23, 9), (20, 1, 1)])
def test_chunks_touched_agrees_with_brute_force(selection, chunks):
    shape = (20, 23, 9)
    cost = chunks_touched(shape, chunks, selection, "uint16")
    assert cost.n_chunks == _touched_by_brute_force(shape, chunks, selection)
    assert cost.nbytes_wanted == np.zeros(shape, np.uint16)[selection].nbytes
    assert cost.nbytes_read == cost.n_chunks * np.prod(chunks) * 2
    assert cost.amplification >= 1


def test_chunks_touched_counts_shard_files():
    cost = chunks_touched((512,) * 3, 16, np.s_[:, 100, :], "uint16", shards=128)
    assert cost.n_chunks == 32 * 32 and cost.n_files == 4 * 4


@pytest.mark.parametrize(
    "selection, error",
    [(np.s_[::2], ValueError), (np.s_[30], IndexError), (np.s_[5:5], ValueError), (np.s_[[1, 2]], TypeError),
     (np.s_[..., ..., 1], ValueError), (np.s_[1, 1, 1, 1], ValueError)],
)
def test_chunks_touched_rejects_unsupported_selections(selection, error):
    with pytest.raises(error):
        chunks_touched((20, 20, 20), 4, selection)


def test_suggestion_respects_target_and_shape():
    for shape, dtype, target in [((2048,) * 3, "uint16", 4 * 2**20), ((50, 3000, 3000), "uint8", 2**20), ((7, 9, 11), "float32", 2**30)]:
        for access in ("blocks", "planes"):
            chunk = suggest_chunk_shape(shape, dtype, access=access, target_nbytes=target)
            assert np.prod(chunk) * np.dtype(dtype).itemsize <= target
            assert all(1 <= c <= n for c, n in zip(chunk, shape))
    assert suggest_chunk_shape((7, 9, 11), "float32", target_nbytes=2**30) == (7, 9, 11)


def test_plane_suggestion_is_one_voxel_thick_on_the_plane_axis():
    assert suggest_chunk_shape((512, 512, 512), "uint16", access="planes") == (1, 512, 512)
    assert suggest_chunk_shape((512, 512, 512), "uint16", access="planes", plane_axis=1)[1] == 1


def test_block_suggestion_follows_voxel_size():
    chunk = suggest_chunk_shape((1000, 4000, 4000), "uint16", voxel_size=(8.0, 1.0, 1.0), target_nbytes=2**21)
    physical = np.array(chunk) * np.array([8.0, 1.0, 1.0])
    assert physical.max() / physical.min() <= 2
    assert chunk[0] < chunk[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(access="random"), "access must be one of"),
        (dict(target_nbytes=1), "at least one voxel"),
        (dict(voxel_size=(1.0, 2.0)), "voxel_size needs 3"),
        (dict(access="planes", plane_axis=3), "plane_axis"),
    ],
)
def test_suggestion_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        suggest_chunk_shape((64, 64, 64), "uint16", **kwargs)


@pytest.mark.parametrize("value, text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (3 * 2**30, "3.0 GiB")])
def test_format_bytes(value, text):
    assert format_bytes(value) == text


@pytest.mark.parametrize("value", [-1, "ten", float("nan")])
def test_format_bytes_rejects_non_sizes(value):
    with pytest.raises(ValueError):
        format_bytes(value)
