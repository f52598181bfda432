"""data_helpers.stores: listing what a store holds on disk."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from data_helpers import list_files, show_tree


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


def test_tree_shows_metadata_and_folds_chunk_files(tmp_path, capsys):
    store = tmp_path / "img.zarr"
    zarr.create_array(store=store, data=np.ones((40, 10), dtype=np.uint8), chunks=(2, 10))
    text = show_tree(store, max_entries=3)
    assert capsys.readouterr().out.strip() == text
    lines = text.splitlines()
    total = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    assert lines[0] == f"img.zarr/  ({total:,} bytes, 21 files)"
    assert lines[1].startswith("├── zarr.json")  # metadata first
    assert any(line.strip().startswith("└── ... 17 more folders") for line in lines)
    assert lines[3].endswith("0/  (" + lines[3].split("(")[1]) and "c/" in lines[2]


def test_tree_numbers_sort_naturally(tmp_path):
    for name in ["10", "2", "1"]:
        (tmp_path / name).write_text("x")
    lines = show_tree(tmp_path).splitlines()
    assert [line.split()[1] for line in lines[1:]] == ["1", "2", "10"]


def test_tree_refuses_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError):
        show_tree(tmp_path / "nope")
    with pytest.raises(ValueError, match="max_entries"):
        show_tree(tmp_path, max_entries=0)


def test_tree_depth_limit_summarises_deep_folders(tmp_path):
    store = tmp_path / "v3.zarr"
    zarr.create_array(store=store, data=np.ones((8, 8, 8), dtype=np.uint8), chunks=(2, 2, 2))
    lines = show_tree(store, max_depth=1).splitlines()
    assert lines[-1].startswith("└── c/  (") and lines[-1].endswith("64 files)")
    assert len(lines) == 3  # the root line, zarr.json, c/ folded
    deeper = show_tree(store, max_depth=2).splitlines()
    assert len(deeper) > len(lines)
    with pytest.raises(ValueError, match="max_depth"):
        show_tree(store, max_depth=0)


@pytest.mark.timeout(60)  # the old code walked 2**40 paths here: fail instead of hanging
def test_tree_shows_links_and_does_not_follow_loops(tmp_path):
    store = tmp_path / "img.zarr"
    (store / "c").mkdir(parents=True)
    (store / "zarr.json").write_text("{}")
    (store / "c" / "0").write_bytes(b"x" * 10)
    (store / "c" / "again").symlink_to("..")  # back up the tree: a loop
    (store / "c" / "self").symlink_to(".")
    (tmp_path / "big").write_bytes(b"y" * 1000)
    (store / "big-link").symlink_to(tmp_path / "big")
    text = show_tree(store)
    lines = text.splitlines()
    assert lines[0] == "img.zarr/  (12 bytes, 2 files)"  # link targets are not counted
    assert "big-link -> " + str(tmp_path / "big") + "  (link, not followed)" in text
    assert "again -> ..  (link, not followed)" in text and "self -> .  (link, not followed)" in text
    assert len(lines) == 7


@pytest.mark.timeout(60)
def test_tree_counts_hidden_links_apart(tmp_path):
    for i in range(3):
        (tmp_path / f"f{i}").write_text("ab")
    for i in range(2):
        (tmp_path / f"z{i}").symlink_to(tmp_path)
    lines = show_tree(tmp_path, max_entries=2).splitlines()
    assert lines[-1] == "└── ... 1 more file, 2 more links  (2 bytes)"
