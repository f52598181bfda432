"""data_helpers.synthetic: deterministic, lazy, chunk-independent, compressible."""

import numpy as np
import pytest
from numcodecs import Blosc

from data_helpers import LABEL_NAMES, synthetic_labels, synthetic_volume


def test_volume_is_lazy_and_any_size():
    vol = synthetic_volume((4096, 4096, 4096), chunks=256)  # 128 GiB: must not be computed
    assert vol.shape == (4096,) * 3 and vol.dtype == np.uint16 and vol.chunksize == (256,) * 3
    corner = vol[-3:, -3:, -3:].compute()
    assert corner.shape == (3, 3, 3)


def test_values_do_not_depend_on_chunks_or_calls():
    a = synthetic_volume((40, 50, 70), chunks=(7, 64, 13), seed=3).compute()
    b = synthetic_volume((40, 50, 70), chunks=128, seed=3).compute()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, synthetic_volume((40, 50, 70), seed=3).compute())


def test_seeds_differ():
    a = synthetic_volume((32, 32, 32), seed=0).compute()
    b = synthetic_volume((32, 32, 32), seed=1).compute()
    assert (a != b).mean() > 0.5


def test_arrays_with_other_chunks_do_not_share_dask_keys():
    a = synthetic_volume((64, 64, 64), chunks=16)
    b = synthetic_volume((64, 64, 64), chunks=32)
    assert a.name != b.name
    assert bool((a == b).all().compute())


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
def test_dtypes_and_range(dtype):
    vol = synthetic_volume((48, 48, 48), dtype=dtype).compute()
    assert vol.dtype == np.dtype(dtype)
    top = np.iinfo(dtype).max if vol.dtype.kind == "u" else 1.0
    assert 0 <= vol.min() and vol.max() <= top
    assert vol.max() > 0.6 * top and vol.min() < 0.1 * top


def test_compresses_like_an_image_not_like_noise():
    vol = synthetic_volume((64, 128, 128)).compute()
    codec = Blosc("zstd", 5, Blosc.SHUFFLE)
    ratio = vol.nbytes / len(codec.encode(vol))
    assert 1.3 < ratio < 3  # like a real 16-bit scan
    noiseless = synthetic_volume((64, 128, 128), noise=0).compute()
    assert vol.nbytes / len(codec.encode(noiseless)) > ratio
    noise = np.random.default_rng(0).integers(0, 2**16, vol.shape, dtype=np.uint16)
    assert noise.nbytes / len(codec.encode(noise)) < 1.1


def test_labels_match_the_volume():
    shape = (64, 64, 64)
    vol = synthetic_volume(shape, noise=0).compute().astype(float)
    labels = synthetic_labels(shape).compute()
    assert set(np.unique(labels)) == set(LABEL_NAMES)
    means = {k: vol[labels == k].mean() for k in LABEL_NAMES}
    assert means[0] < means[2] < means[1]  # background dark, vessels darker than tissue
    np.testing.assert_array_equal(labels, synthetic_labels(shape, chunks=(5, 17, 64)).compute())


@pytest.mark.parametrize(
    "kwargs",
    [dict(shape=(10, 10)), dict(shape=(10, 0, 10)), dict(chunks=(0, 1, 1)), dict(dtype="int8"), dict(noise=2.0), dict(seed=-1)],
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        synthetic_volume(**{"shape": (8, 8, 8), **kwargs})


def test_labels_need_unsigned_integers():
    with pytest.raises(ValueError, match="unsigned integer"):
        synthetic_labels((8, 8, 8), dtype="float32")


def test_noise_does_not_repeat_so_no_chunk_size_is_favored():
    """Tiled noise would let a compressor find repeats in a 128³ block that eight 64³ blocks hide."""
    block = synthetic_volume((256, 256, 256), noise=0.002)[:128, :128, :128].compute()  # background corner
    codec = Blosc("zstd", 5, Blosc.SHUFFLE)
    whole = block.nbytes / len(codec.encode(block))
    parts = [np.ascontiguousarray(block[z:z + 64, y:y + 64, x:x + 64]) for z in (0, 64) for y in (0, 64) for x in (0, 64)]
    eighths = block.nbytes / sum(len(codec.encode(p)) for p in parts)
    assert abs(whole / eighths - 1) < 0.05


def test_noise_has_the_asked_spread():
    flat = synthetic_volume((64, 64, 64), dtype="float64", noise=0.02)[:8, :8, :].compute()  # background only
    clean = synthetic_volume((64, 64, 64), dtype="float64", noise=0)[:8, :8, :].compute()
    assert np.std(flat - clean) == pytest.approx(0.02, rel=0.1)
