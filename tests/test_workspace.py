"""data_helpers.workspace: chapter output folders that never delete foreign data."""

from __future__ import annotations

import pytest

from data_helpers import workspace
from data_helpers.workspace import MARKER, OutputFolderError, output_dir, repository_root


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv(workspace.ENV_OUTPUT, str(tmp_path / "data"))
    return tmp_path / "data"


def test_creates_folder_with_marker(out):
    folder = output_dir("creating")
    assert folder == out / "creating" and folder.is_dir()
    assert (folder / MARKER).is_file()


def test_fresh_empties_own_folder(out):
    folder = output_dir("creating")
    (folder / "old.zarr").mkdir()
    folder = output_dir("creating", fresh=True)
    assert sorted(p.name for p in folder.iterdir()) == [MARKER]


def test_fresh_never_deletes_a_folder_it_did_not_make(out):
    mine = out / "creating"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(OutputFolderError, match="not emptied"):
        output_dir("creating", fresh=True)
    assert (mine / "notes.txt").read_text() == "precious"
    # Without fresh=True the folder is used, but not claimed.
    assert output_dir("creating") == mine
    assert not (mine / MARKER).exists()


@pytest.mark.parametrize("name", ["", "..", "a/b", "../x", "/tmp", ".hidden", 3])
def test_rejects_names_that_are_not_plain(out, name):
    with pytest.raises(ValueError, match="plain folder name"):
        output_dir(name)


def test_file_in_the_way_is_refused(out):
    out.mkdir()
    (out / "creating").write_text("a file")
    with pytest.raises(OutputFolderError, match="not a folder"):
        output_dir("creating")


def test_default_parent_is_repository_data(tmp_path, monkeypatch):
    monkeypatch.delenv(workspace.ENV_OUTPUT, raising=False)
    (tmp_path / "_toc.yml").write_text("root: intro\n")
    (tmp_path / "book").mkdir()
    monkeypatch.chdir(tmp_path / "book")
    assert repository_root() == tmp_path
    assert output_dir("ch") == tmp_path / "data" / "ch"


def test_repository_root_not_found(tmp_path, monkeypatch):
    monkeypatch.delenv(workspace.ENV_OUTPUT, raising=False)
    with pytest.raises(FileNotFoundError, match="_toc.yml"):
        repository_root(tmp_path)
