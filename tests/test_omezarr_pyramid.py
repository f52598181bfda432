"""data_helpers.omezarr: every level of every pyramid equals a plain NumPy reference, for every dtype and shape."""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pytest
import zarr

from data_helpers import omezarr, write_ome_zarr
from data_helpers.omezarr import METHODS, _block_mean, _downsample_block

INT_DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"]
DTYPES = [*INT_DTYPES, "float32", "float64", "bool"]


def reference_level(above: np.ndarray, step: tuple[int, ...], method: str) -> np.ndarray:
    """The next level from the one above, the slow and obvious way, with Python integers for means."""
    trimmed = above[tuple(slice(0, (n // s) * s) for n, s in zip(above.shape, step))]
    if method == "nearest":
        return trimmed[tuple(slice(None, None, s) for s in step)]
    out_shape = tuple(n // s for n, s in zip(trimmed.shape, step))
    split = [x for n, s in zip(trimmed.shape, step) for x in (n // s, s)]
    order = list(range(0, len(split), 2)) + list(range(1, len(split), 2))
    blocks = trimmed.reshape(split).transpose(order).reshape(out_shape + (-1,))
    count = blocks.shape[-1]
    if method == "max":
        return blocks.max(axis=-1)
    out = np.empty(out_shape, above.dtype)
    for index in np.ndindex(out_shape):
        values = blocks[index]
        if method == "mode":
            uniq, counts = np.unique(values, return_counts=True)
            out[index] = uniq[np.argmax(counts)]  # the first of the most frequent: the smallest
        elif above.dtype.kind == "b":
            out[index] = 2 * int(values.sum()) >= count
        elif above.dtype.kind in "iu":
            total = sum(int(v) for v in values)  # exact, whatever the dtype
            out[index] = (2 * total + count) // (2 * count)  # floor(mean + 1/2)
        else:
            out[index] = values.astype(np.float64).mean()
    return out


def random_data(rng, shape, dtype, method):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if method == "mode":  # few values, so that blocks have a most frequent one and ties
        return rng.integers(0, 4, shape).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(shape) * 1000).astype(dtype)


def cases():
    """Every dtype with every method, each on a seeded odd shape and chunk size (3D and 2D)."""
    rng = np.random.default_rng(20261125)
    shapes = [(65, 33, 17), (129, 5, 7), (3, 64, 65), (17, 31, 97), (33, 33, 33), (130, 66), (65, 129), (9, 200)]
    chunk_sizes = [32, 64, 7, 16, 5, 8, 13]
    out = []
    for dtype in DTYPES:
        for method in METHODS:
            shape = shapes[rng.integers(len(shapes))]
            chunk = min(int(chunk_sizes[rng.integers(len(chunk_sizes))]), max(shape) // 2)  # at least 2 levels
            out.append(pytest.param(dtype, method, shape, chunk, id=f"{dtype}-{method}-{'x'.join(map(str, shape))}-c{chunk}"))
    return out


@pytest.mark.parametrize("dtype, method, shape, chunk", cases())
def test_every_level_equals_a_numpy_reference(tmp_path, dtype, method, shape, chunk):
    rng = np.random.default_rng(zlib.crc32(f"{dtype}-{method}-{shape}-{chunk}".encode()))
    data = random_data(rng, shape, dtype, method)
    image = write_ome_zarr(data, tmp_path / "p.ome.zarr", voxel_size=1, chunks=chunk, method=method)
    assert image.n_levels >= 2
    group = zarr.open_group(image.path, mode="r")
    level = data
    for i, (scale, previous) in enumerate(zip(image.scales, (image.scales[0], *image.scales))):
        if i:
            step = tuple(round(s / p) for s, p in zip(scale, previous))
            level = reference_level(level, step, method)
        written = group[str(i)][:]
        assert written.shape == level.shape == image.shapes[i]
        assert written.dtype == data.dtype
        if data.dtype.kind == "f":
            # sums taken in another order: equal to a few units in the last place of values near 1000
            np.testing.assert_allclose(written, level, rtol=1e-6, atol=1e-3 if data.dtype == np.float32 else 1e-9)
        else:
            np.testing.assert_array_equal(written, level, err_msg=f"level {i}")


@pytest.mark.parametrize("length, chunk", [(65, 32), (129, 64), (33, 16), (3, 2), (97, 48)])
@pytest.mark.parametrize("method", METHODS)
def test_labels_and_every_method_work_on_odd_lengths(tmp_path, length, chunk, method):
    """65 voxels in chunks of 32 leaves a last block of one voxel; it once crashed the mode."""
    data = (np.arange(length * 6).reshape(6, length) % 5).astype(np.uint32)
    kind = "intensity" if method in ("mean", "max") else "labels"
    image = write_ome_zarr(data, tmp_path / "l.ome.zarr", voxel_size=1, chunks=chunk, dims="yx", kind=kind, method=method)
    assert image.shapes[1] == (3, length // 2)


@pytest.mark.parametrize("dtype", ["bool", "uint8", "uint16", "int32", "uint64", "float32"])
@pytest.mark.parametrize("step", [(2, 2, 2), (1, 2, 2), (3, 2, 1)])
def test_large_blocks_averaged_in_slabs_equal_one_pass(monkeypatch, dtype, step):
    """Blocks bigger than a slab are averaged slab by slab along axis 0; odd lengths drop their last voxel."""
    rng = np.random.default_rng(7)
    block = rng.integers(0, 200, (38, 9, 11)).astype(dtype)
    monkeypatch.setattr(omezarr, "_MEAN_SLAB_BYTES", 3 * block[0].nbytes)  # a few planes a slab
    one_pass = omezarr._mean_of_blocks(block, step)
    assert one_pass.shape == tuple(n // s for n, s in zip(block.shape, step))
    calls = []
    whole = omezarr._mean_of_blocks
    monkeypatch.setattr(omezarr, "_mean_of_blocks", lambda b, s: calls.append(b.shape) or whole(b, s))
    slabs = _block_mean(block, step)
    assert len(calls) > 2 and all(n % step[0] == 0 for n, *_ in calls)
    assert slabs.dtype == one_pass.dtype
    np.testing.assert_array_equal(slabs, one_pass)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_means_are_exact_at_the_extremes(dtype):
    info = np.iinfo(dtype)
    for value in {info.max, info.min, info.max - 1, info.min + 1, 0}:
        block = np.full((2, 2, 2), value, dtype)
        assert _block_mean(block, (2, 2, 2)).item() == value
    # seven of the largest value and one less: the mean is max - 1/8, which rounds up to max
    block = np.array([info.max] * 7 + [info.max - 1], dtype).reshape(2, 2, 2)
    assert _block_mean(block, (2, 2, 2)).item() == info.max


def test_int64_and_uint64_means_do_not_overflow_or_lose_precision(tmp_path):
    constant = np.full((4, 4, 4), 2**62, np.int64)
    image = write_ome_zarr(constant, tmp_path / "c.ome.zarr", voxel_size=1, chunks=2)
    assert int(zarr.open_array(image.path / "1", mode="r")[0, 0, 0]) == 2**62
    big = np.array([2**53 + 1, 2**53 + 3, 2**63 + 5, 2**64 - 1], np.uint64).reshape(2, 2)
    expected = (2**53 + 1 + 2**53 + 3 + 2**63 + 5 + 2**64 - 1 + 2) // 4
    assert _block_mean(big, (2, 2)).item() == expected  # float64 would give a multiple of 2**11 here
    assert expected % 2**11 != 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_means_do_not_overflow(dtype):
    largest = np.finfo(dtype).max
    block = np.full((2, 2, 2), largest, dtype)
    assert _block_mean(block, (2, 2, 2)).item() == largest
    mixed = np.array([largest, largest, largest / 2, -largest], dtype).reshape(2, 2)
    assert _block_mean(mixed, (2, 2)).item() == pytest.approx(float(largest) * 0.375, rel=1e-6)


@pytest.mark.parametrize("values, expected", [([1, 2], 2), ([-1, -2], -1), ([-3, -2, 5, 6], 2), ([0, 0, 0, 1], 0),
                                              ([0, 0, 1, 1], 1), ([-1, -1, -1, 0], -1),
                                              ([-1, -1, 0], -1), ([1, 1, 2], 1), ([-2, -1, -1], -1)])
def test_mean_rounds_half_up(values, expected):
    block = np.array(values, np.int64).reshape(1, -1)
    assert _block_mean(block, (1, len(values))).item() == expected
    assert _block_mean(block.astype(np.int16), (1, len(values))).item() == expected


def test_a_block_thinner_than_its_step_gives_an_empty_block():
    for method in METHODS:
        out = _downsample_block(np.ones((1, 4, 4), np.uint8), (2, 2, 2), method)
        assert out.shape == (0, 2, 2) and out.dtype == np.uint8


def test_no_nan_or_infinity_reaches_the_metadata(tmp_path):
    image = write_ome_zarr(np.ones((8, 8), np.float32), tmp_path / "f.ome.zarr", voxel_size=1e-300, chunks=2)

    def refuse(constant):
        raise AssertionError(f"{constant} in the metadata")

    doc = json.loads((image.path / "zarr.json").read_text(), parse_constant=refuse)
    scales = [ds["coordinateTransformations"][0]["scale"] for ds in doc["attributes"]["ome"]["multiscales"][0]["datasets"]]
    assert all(math.isfinite(s) and s > 0 for scale in scales for s in scale)


@pytest.mark.parametrize(("method", "expected"), [("mean", (1.0, 10.25, -2.75)), ("mode", (1.0, 10.25, -2.75)),
                                                  ("nearest", (1.0, 10.0, -3.0))])
def test_translation_of_a_level_follows_its_method(tmp_path, method, expected):
    """Averaged blocks are centred on the block; a strided level keeps the first voxel, which does not move."""
    data = np.arange(8 * 16 * 16, dtype=np.uint16).reshape(8, 16, 16)
    image = write_ome_zarr(data, tmp_path / "a.ome.zarr", voxel_size=(2.0, 0.5, 0.5), unit="um", chunks=8,
                           method=method, n_levels=2, translation=(1.0, 10.0, -3.0))
    assert image.translations[1] == expected
    if method == "nearest":
        # the value at the level's first voxel is level 0's value at that same position
        level1 = zarr.open_array(tmp_path / "a.ome.zarr" / "1", mode="r")[...]
        assert level1[0, 0, 0] == data[0, 0, 0] and level1[0, 1, 1] == data[0, 2, 2]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_the_synchronous_zarr_pipeline_writes_the_same_bytes_and_is_not_left_set(tmp_path, monkeypatch, version):
    """write_ome_zarr writes through zarr's synchronous pipeline only while it writes, with the same chunks."""
    default = zarr.config.get("codec_pipeline.path")
    assert default != omezarr._ZARR_PIPELINE["codec_pipeline.path"], "the pipeline chosen is zarr's default now"
    seen = []
    levels = omezarr._write_levels
    monkeypatch.setattr(omezarr, "_write_levels",
                        lambda *a: seen.append(zarr.config.get("codec_pipeline.path")) or levels(*a))
    data = (np.arange(40 * 70 * 90) % 3001).astype(np.uint16).reshape(40, 70, 90)
    options = dict(voxel_size=1, unit="um", chunks=32, version=version, progress=False)
    write_ome_zarr(data, tmp_path / "sync.ome.zarr", **options)
    assert seen == [omezarr._ZARR_PIPELINE["codec_pipeline.path"]]
    assert zarr.config.get("codec_pipeline.path") == default
    monkeypatch.setattr(omezarr, "_ZARR_PIPELINE", {})  # zarr's default pipeline
    write_ome_zarr(data, tmp_path / "default.ome.zarr", **options)
    chunks = {p.relative_to(tmp_path / "sync.ome.zarr"): p.read_bytes()
              for p in (tmp_path / "sync.ome.zarr").rglob("*") if p.is_file() and p.name[0] not in ".z"}
    assert len(chunks) > 10
    for name, content in chunks.items():
        assert (tmp_path / "default.ome.zarr" / name).read_bytes() == content, name


def test_overlapping_writes_leave_zarrs_pipeline_as_it_was(tmp_path, monkeypatch):
    """The first write to end must not restore the config while the second still runs, nor the second leave it set."""
    import threading
    import time

    default = zarr.config.get("codec_pipeline.path")
    both_in = threading.Barrier(2, timeout=60)
    seen = {}
    levels = omezarr._write_levels

    def write_levels(request, plan, staging):
        both_in.wait()
        if request.name == "second":
            time.sleep(0.3)  # the first write ends first
        seen[request.name] = zarr.config.get("codec_pipeline.path")
        levels(request, plan, staging)

    monkeypatch.setattr(omezarr, "_write_levels", write_levels)
    data = np.zeros((16, 16, 16), np.uint8)
    threads = [threading.Thread(target=write_ome_zarr, args=(data, tmp_path / f"{name}.ome.zarr"),
                                kwargs=dict(voxel_size=1, unit="um", name=name, progress=False))
               for name in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a write did not end within 120 s"
    assert seen == {n: omezarr._ZARR_PIPELINE["codec_pipeline.path"] for n in ("first", "second")}
    assert zarr.config.get("codec_pipeline.path") == default
    assert zarr.config.get("codec_pipeline.max_workers") is None
