"""data_helpers.workspace: chapter output folders that never delete foreign data."""

from __future__ import annotations

import contextlib
import os
import pytest

from data_helpers import workspace
import shutil

from data_helpers.workspace import MARKER, OutputFolderError, output_dir, output_path, repository_root


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv(workspace.ENV_OUTPUT, str(tmp_path / "data"))
    return tmp_path / "data"


def test_creates_folder_with_marker(out):
    folder = output_dir("creating")
    assert folder == out / "creating" and folder.is_dir()
    assert (folder / MARKER).is_file()


def test_fresh_removes_only_what_output_path_handed_out(out):
    folder = output_dir("creating")
    output_path("creating", "old.zarr").mkdir()
    (output_path("creating", "table.csv")).write_text("1,2")
    (folder / "my-notes.txt").write_text("a reader's own file")
    (folder / "my-analysis").mkdir()
    folder = output_dir("creating", fresh=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted([MARKER, "my-notes.txt", "my-analysis"])
    assert (folder / "my-notes.txt").read_text() == "a reader's own file"


def test_output_path_replaces_its_own_entry_so_a_cell_can_run_twice(out):
    for _ in range(2):
        target = output_path("creating", "heart.zarr")
        assert not target.exists()
        target.mkdir()
        (target / "zarr.json").write_text("{}")


def test_output_path_never_replaces_a_readers_file(out):
    folder = output_dir("creating")
    (folder / "heart.zarr").write_text("precious")
    with pytest.raises(OutputFolderError, match="not written through data_helpers"):
        output_path("creating", "heart.zarr")
    assert (folder / "heart.zarr").read_text() == "precious"


def test_a_copied_folder_is_not_taken_for_the_original(out):
    output_path("creating", "result.zarr").mkdir()
    backup = out / "creating-backup"
    shutil.copytree(out / "creating", backup)
    assert (backup / MARKER).is_file() and (backup / "result.zarr").is_dir()
    with pytest.raises(OutputFolderError, match="not emptied"):
        output_dir("creating-backup", fresh=True)
    with pytest.raises(OutputFolderError, match="copied"):
        output_path("creating-backup", "result.zarr")
    assert (backup / "result.zarr").is_dir()


def test_a_forged_manifest_cannot_name_paths_outside_the_folder(out):
    import json

    folder = output_dir("creating")
    victim = out / "victim.txt"
    victim.write_text("keep me")
    manifest = json.loads((folder / MARKER).read_text())
    manifest["entries"] = ["../victim.txt"]
    (folder / MARKER).write_text(json.dumps(manifest))
    with pytest.raises(OutputFolderError):
        output_dir("creating", fresh=True)
    assert victim.read_text() == "keep me"


def test_an_empty_folder_the_reader_made_is_not_claimed(out):
    (out / "creating").mkdir(parents=True)
    assert output_dir("creating") == out / "creating"
    assert not (out / "creating" / MARKER).exists()
    with pytest.raises(OutputFolderError, match="not made by"):
        output_path("creating", "x.zarr")


def test_a_symlinked_entry_is_neither_followed_nor_removed(out, tmp_path):
    """Rule 1 of the safety core: a link at a handed-out name never matches a recorded identity."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    target = output_path("creating", "link")
    target.symlink_to(elsewhere, target_is_directory=True)
    output_dir("creating", fresh=True)
    assert (elsewhere / "keep.txt").read_text() == "keep"
    assert target.is_symlink()
    with pytest.raises(OutputFolderError, match="not replaced"):
        output_path("creating", "link")
    assert (elsewhere / "keep.txt").read_text() == "keep"


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


@pytest.mark.parametrize("name", ["", "..", "a/b", "../x", "/tmp", ".hidden", 3, "ab\n", "a\\b", "a\x00b"])
def test_rejects_names_that_are_not_plain(out, name):
    with pytest.raises(ValueError, match="plain folder name"):
        output_dir(name)
    with pytest.raises(ValueError, match="plain folder name"):
        output_path("creating", name)


def test_file_in_the_way_is_refused(out):
    out.mkdir()
    (out / "creating").write_text("a file")
    with pytest.raises(OutputFolderError, match="not a plain folder"):
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


def test_display_path_is_relative_only_when_close_by(tmp_path, monkeypatch):
    from data_helpers import display_path

    (tmp_path / "book").mkdir()
    monkeypatch.chdir(tmp_path / "book")
    assert display_path(tmp_path / "data" / "x.zarr") == os.path.join(os.pardir, "data", "x.zarr")
    assert display_path(tmp_path / "book" / "x.zarr") == "x.zarr"
    assert display_path(tmp_path.parent.parent / "x.zarr") == str(tmp_path.parent.parent / "x.zarr")
    assert display_path("s3://bucket/x.zarr") == "s3://bucket/x.zarr"


def test_display_path_shows_paths_inside_the_repository_from_its_top(tmp_path, monkeypatch):
    """In the book's repository a chapter run from book/ shows data/<chapter>/..., as the first cell does."""
    from data_helpers import display_path

    (tmp_path / "_toc.yml").write_text("format: jb-book\n")
    (tmp_path / "book").mkdir()
    for where in (tmp_path / "book", tmp_path):
        monkeypatch.chdir(where)
        assert display_path(tmp_path / "data" / "dask" / "x.zarr") == os.path.join("data", "dask", "x.zarr")
        assert display_path(os.path.join(os.pardir, "data") if where.name == "book" else "data") == "data"
    # outside the repository and two folders up from book/: shown as it is, not as a chain of '..'
    monkeypatch.chdir(tmp_path / "book")
    outside = tmp_path.parent / "elsewhere" / "x.zarr"
    assert display_path(outside) == str(outside)
    assert str(tmp_path) not in display_path(tmp_path / "data" / "dask" / "x.zarr")


def _hold_in_another_process(out, name):
    """Start a process that takes ``name``'s folder and keeps it until its stdin closes."""
    import subprocess
    import sys

    code = ("import sys\nfrom data_helpers import output_dir\n"
            f"output_dir({name!r})\nprint('held', flush=True)\nsys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, workspace.ENV_OUTPUT: str(out)})
    assert holder.stdout.readline().strip() == "held"
    return holder


needs_locks = pytest.mark.skipif(workspace.fcntl is None, reason="no advisory file locks (Windows)")


@needs_locks
def test_a_second_process_may_not_use_a_folder_in_use_and_is_told_by_whom(out):
    holder = _hold_in_another_process(out, "busy")
    try:
        output_path_written = out / "busy" / MARKER
        before = output_path_written.read_bytes()
        with pytest.raises(OutputFolderError, match=rf"in use by another running process \(pid {holder.pid}\)"):
            output_dir("busy", fresh=True)
        with pytest.raises(OutputFolderError, match=f"Shut that kernel down.*{workspace.ENV_OUTPUT}"):
            output_path("busy", "result.zarr")
        assert output_path_written.read_bytes() == before  # nothing was written or removed
        assert output_dir("other-chapter").is_dir()  # other chapters' folders are free
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0
    # the lock ends with the process that held it, however it ends
    assert output_dir("busy", fresh=True) == out / "busy"


@needs_locks
def test_one_process_may_ask_for_its_folder_again_and_a_forked_child_shares_it(out):
    output_dir("mine")
    assert output_dir("mine", fresh=True) == out / "mine"
    pid = os.fork()
    if pid == 0:  # the child: a forked benchmark or measurement of the same chapter
        try:
            output_path("mine", "from-child.txt").write_text("ok")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert (out / "mine" / "from-child.txt").read_text() == "ok"


# -- the lock file: never through a link; only a running holder keeps it --------------------------------------


@needs_locks
@pytest.mark.parametrize("kind", ["link", "dangling link", "folder"])
def test_a_lock_file_that_is_a_link_or_a_folder_is_refused(out, tmp_path, kind):
    out.mkdir()
    lock = out / ".chapter.lock"
    victim = tmp_path / "thesis.tex"
    if kind == "link":
        victim.write_text("three years of work")
        lock.symlink_to(victim)
    elif kind == "dangling link":
        lock.symlink_to(victim)
    else:
        lock.mkdir()
    with pytest.raises(OutputFolderError, match="symbolic link" if "link" in kind else "a folder"):
        output_dir("chapter")
    if kind == "link":
        assert victim.read_text() == "three years of work"
    else:
        assert not victim.exists()
    assert not (out / "chapter").exists()


def _holder_with_a_lingering_child(out, name, how):
    """A process that takes ``name``'s folder, starts a child that outlives it (forked, or given the lock's
    descriptor), and exits. Returns the exited process and the child's pid; the child ends when its stdin closes."""
    import subprocess
    import sys

    code = ("import os, subprocess, sys\nfrom data_helpers import output_dir, workspace\n"
            f"output_dir({name!r})\n"
            f"if {how!r} == 'fork':\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        sys.stdin.read()\n"
            "        os._exit(0)\n"
            "else:\n"
            "    fd, = workspace._HELD.values()\n"
            "    pid = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'], pass_fds=(fd,)).pid\n"
            "print(pid, flush=True)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, workspace.ENV_OUTPUT: str(out)})
    child = int(parent.stdout.readline())
    assert parent.wait(timeout=60) == 0
    return parent, child


@needs_locks
def test_a_forked_child_does_not_keep_the_folder_after_its_parent_exits(out):
    psutil = pytest.importorskip("psutil")
    parent, child = _holder_with_a_lingering_child(out, "forked", "fork")
    try:
        assert psutil.pid_exists(child)
        assert output_dir("forked", fresh=True) == out / "forked"  # the parent is gone, so is its lock
    finally:
        parent.stdin.close()
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(child).wait(timeout=60)


@needs_locks
def test_the_error_names_the_running_process_that_holds_the_lock(out):
    psutil = pytest.importorskip("psutil")
    parent, child = _holder_with_a_lingering_child(out, "handed", "pass_fds")
    try:
        with pytest.raises(OutputFolderError, match=rf"in use by another running process \(pid {child}\)"):
            output_dir("handed")
    finally:
        parent.stdin.close()
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(child).wait(timeout=60)
    assert output_dir("handed") == out / "handed"  # free once that process has ended


def test_the_manifest_is_never_written_through_a_link(out, tmp_path):
    folder = output_dir("linked")
    victim = tmp_path / "thesis.tex"
    victim.write_text("three years of work")
    (folder / f"{MARKER}.tmp-{os.getpid()}").symlink_to(victim)  # a link planted at a name derived from the pid
    output_path("linked", "result.zarr")
    assert victim.read_text() == "three years of work"
    assert "result.zarr" in workspace._read_manifest(folder)["entries"]


# -- rule 1 of the safety core: an entry is deleted only while it is as the run that wrote it left it ----------


def _run(out, code):
    """Run ``code`` in a new Python process that uses ``out`` as the output parent, as a chapter's kernel does."""
    import subprocess
    import sys

    prelude = "import os\nfrom data_helpers import output_dir, output_path\n"
    done = subprocess.run([sys.executable, "-c", prelude + code], env={**os.environ, workspace.ENV_OUTPUT: str(out)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


CHAPTER_RUN = ("output_dir('ch', fresh=True)\n"
               "output_path('ch', 'table.csv').write_text('1,2')\n"
               "image = output_path('ch', 'image.zarr')\n"
               "image.mkdir()\n"
               "(image / 'zarr.json').write_text('{}')\n")


def test_what_a_finished_run_wrote_is_cleared_by_the_next_run(out):
    _run(out, CHAPTER_RUN)
    assert (out / "ch" / "table.csv").is_file() and (out / "ch" / "image.zarr").is_dir()
    folder = output_dir("ch", fresh=True)
    assert sorted(p.name for p in folder.iterdir()) == [MARKER]
    _run(out, CHAPTER_RUN)  # and the run after that one works again
    _run(out, CHAPTER_RUN)


def test_a_file_the_reader_saved_under_a_handed_out_name_is_not_deleted(out):
    _run(out, CHAPTER_RUN)
    table = out / "ch" / "table.csv"
    table.unlink()
    table.write_text("my own measurements, saved under the chapter's name")
    folder = output_dir("ch", fresh=True)
    assert table.read_text() == "my own measurements, saved under the chapter's name"
    assert not (folder / "image.zarr").exists()  # the chapter's own entry is cleared
    with pytest.raises(OutputFolderError, match="not replaced"):
        output_path("ch", "table.csv")
    assert table.read_text() == "my own measurements, saved under the chapter's name"


def test_a_file_the_reader_added_to_a_handed_out_folder_keeps_the_folder(out):
    _run(out, CHAPTER_RUN)
    notes = out / "ch" / "image.zarr" / "my-notes.txt"
    notes.write_text("annotations of the image")
    output_dir("ch", fresh=True)
    assert notes.read_text() == "annotations of the image"
    assert not (out / "ch" / "table.csv").exists()


def test_a_file_the_reader_saved_under_a_name_the_run_never_wrote_is_not_deleted(out):
    _run(out, "output_dir('ch', fresh=True)\noutput_path('ch', 'result.csv')\n")  # handed out, never written
    mine = out / "ch" / "result.csv"
    mine.write_text("mine")
    output_dir("ch", fresh=True)
    assert mine.read_text() == "mine"


def test_a_killed_run_leaves_what_it_had_not_recorded_and_the_next_run_says_so(out):
    _run(out, "output_dir('ch', fresh=True)\n"
              "output_path('ch', 'first.csv').write_text('1')\n"
              "output_path('ch', 'second.csv').write_text('2')\n"  # this call records first.csv
              "os._exit(0)\n")  # killed: no exit handlers, so second.csv is never recorded
    output_dir("ch", fresh=True)
    assert not (out / "ch" / "first.csv").exists()
    assert (out / "ch" / "second.csv").read_text() == "2"
    with pytest.raises(OutputFolderError, match="ended before it could record.*delete it yourself"):
        output_path("ch", "second.csv")
    assert (out / "ch" / "second.csv").read_text() == "2"


def test_a_manifest_of_names_only_deletes_nothing(out):
    import json

    folder = output_dir("creating")
    (folder / "heart.zarr").write_text("a file the manifest names, with no identity")
    manifest = json.loads((folder / MARKER).read_text())
    manifest["entries"] = ["heart.zarr"]
    (folder / MARKER).write_text(json.dumps(manifest))
    output_dir("creating", fresh=True)
    assert (folder / "heart.zarr").is_file()
    with pytest.raises(OutputFolderError, match="recorded names only"):
        output_path("creating", "heart.zarr")
    assert (folder / "heart.zarr").read_text() == "a file the manifest names, with no identity"


def test_identities_are_recorded_after_each_notebook_cell(out):
    pytest.importorskip("IPython")
    _run(out, "from IPython.testing.globalipapp import get_ipython\n"
              "shell = get_ipython()\n"
              "shell.run_cell(\"from data_helpers import output_path\\n\"\n"
              "               \"output_path('cells', 'a.txt').write_text('written in a cell')\")\n"
              "os._exit(0)\n")  # a killed kernel: neither a next call nor the exit handlers record a.txt
    recorded = workspace._read_manifest(out / "cells")["entries"]["a.txt"]
    assert recorded is not None and recorded["size"] == len("written in a cell")
    assert output_dir("cells", fresh=True) and not (out / "cells" / "a.txt").exists()
