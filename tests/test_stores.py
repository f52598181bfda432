"""data_helpers.stores: listing what a store holds on disk."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from data_helpers import list_files


def test_lists_a_zarr_v3_store(tmp_path, capsys):
    store = tmp_path / "a.zarr"
    zarr.create_array(store=store, data=np.ones((10, 10), dtype=np.uint8), chunks=(5, 10))
    files = list_files(store)
    rel = [p.relative_to(store).as_posix() for p in files]
    assert rel == ["c/0/0", "c/1/0", "zarr.json"]
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[-1].strip().endswith("in 3 files")
    total = sum(p.stat().st_size for p in files)
    assert f"{total:,} bytes" in out[-1]


def test_quiet(tmp_path, capsys):
    (tmp_path / "x").write_text("1")
    assert list_files(tmp_path, show=False) == [tmp_path / "x"]
    assert capsys.readouterr().out == ""


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        list_files(tmp_path / "nope")
