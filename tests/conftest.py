"""Shared fixtures: tiny sample datasets served from a loopback HTTP server.

Set ``TEXTBOOK_STRICT=1`` (``.ci/run`` does) to turn the skips of important
tests (no Chromium, no built book, no shared sample data) into failures.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zarr

from data_helpers import datasets
from data_helpers.server import LocalServer

REPO = Path(__file__).resolve().parents[1]


def toc_files() -> list[str]:
    """Every page of the book, as listed in _toc.yml (paths without .md, root first)."""
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [ch["file"] for ch in part.get("chapters", [])]
    files += [ch["file"] for ch in toc.get("chapters", [])]
    return files

def load_script(relative: str, name: str):
    """Import one of the repository's scripts (``tasks.py``, ``benchmarks/*.py``) as a module called ``name``.

    The script's own folder is on ``sys.path`` while it is imported, as when it runs, so that its imports of
    sibling files (``benchmarks/_common.py``) work.
    """
    import importlib.util
    import sys

    path = REPO / relative
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(path.parent))


SHARED_DATA = REPO.parent / "shared" / "data"
STRICT = os.environ.get("TEXTBOOK_STRICT", "") == "1"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "notebooks: runs each chapter, then each of its sections again, last first, in one kernel (slow; needs the sample data)"
    )


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it when TEXTBOOK_STRICT=1 (as in CI)."""
    if STRICT:
        pytest.fail(f"{reason} (TEXTBOOK_STRICT=1 turns this skip into a failure)")
    pytest.skip(reason)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class TinyDataset:
    info: datasets.DatasetInfo
    data: np.ndarray
    mirror: Path  # folder served by the server; the store is mirror / info.folder
    cache: Path
    server: LocalServer

    def cached(self, name: str) -> Path:
        return self.cache / self.info.folder / name

    def served(self, name: str) -> Path:
        return self.mirror / self.info.folder / name


def make_tiny_store(folder: Path) -> np.ndarray:
    """A 10 x 12 x 14 uint16 Zarr v2 array in 8^3 chunks (8 chunk files), like the heart."""
    data = np.arange(10 * 12 * 14, dtype=np.uint16).reshape(10, 12, 14)
    arr = zarr.create_array(
        store=str(folder), shape=data.shape, chunks=(8, 8, 8), dtype=data.dtype, zarr_format=2
    )
    arr[...] = data
    return data


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No data_helpers variable leaks in from the caller's environment."""
    for var in (datasets.ENV_CACHE, datasets.ENV_MIRROR, datasets.ENV_OFFLINE):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(datasets.ENV_CACHE, str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def tiny(clean_env, monkeypatch):
    """Dataset 'tiny', registered like the heart and served from a loopback mirror."""
    tmp_path = clean_env
    mirror = tmp_path / "mirror"
    store = mirror / "tiny.zarr"
    data = make_tiny_store(store)
    files = {p.name: sha256(p) for p in sorted(store.iterdir()) if p.is_file()}
    info = datasets.DatasetInfo(
        name="tiny", title="tiny test array", folder="tiny.zarr", files=files,
        shape=data.shape, dtype="uint16", chunks=(8, 8, 8), axes=("z", "y", "x"),
        voxel_size=(2.0, 1.0, 1.0), unit="micrometer", licence="CC0-1.0", citation="none",
    )
    monkeypatch.setitem(datasets.DATASETS, "tiny", info)
    with LocalServer(mirror) as server:
        monkeypatch.setenv(datasets.ENV_MIRROR, server.url)
        yield TinyDataset(info, data, mirror, tmp_path / "cache", server)
