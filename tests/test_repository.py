"""The repository keeps its promises: two commands, pinned requirements, CI runs the test command."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO


def _quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands():
    assert _quick_start_commands() == ["python3 tasks.py book", "python3 tasks.py test"]


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r'^"\$PY" tasks\.py test\s*$', ci, flags=re.MULTILINE)
    assert "TEXTBOOK_STRICT=1" in ci


def test_requirements_are_pinned():
    lines = [ln.split("#")[0].strip() for ln in (REPO / "requirements.txt").read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    assert "-e ./helpers" in lines
    pins = {}
    for line in lines:
        if line.startswith("-e "):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"not pinned with ==: {line}"
        pins[re.sub(r"\[.*\]", "", name).lower()] = version
    for needed in ("jupyter-book", "myst-nb", "jupytext", "ngff-zarr", "zarr", "dask", "matplotlib", "pooch", "rich"):
        assert needed in pins, f"{needed} is not pinned in requirements.txt"
    assert pins["jupyter-book"].startswith("1."), "the book is built with Jupyter Book 1.x"


def test_outputs_folder_is_ignored_but_documented():
    ignore = (REPO / ".gitignore").read_text().splitlines()
    assert "data/*" in ignore and "!data/README.md" in ignore
    assert (REPO / "data" / "README.md").is_file()


def test_sample_data_is_not_committed():
    """The heart files are downloaded or mirrored, never committed."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert tracked, "git ls-files listed nothing"
    assert not [path for path in tracked if "hoa_heart.zarr" in path]


def test_write_benchmark_runs_and_prints_its_table(tmp_path):
    """A smoke run at a tiny size, so the script cannot rot; its figures are not checked (no timed assertions)."""
    script = REPO / "benchmarks" / "ome_zarr_write.py"
    proc = subprocess.run([sys.executable, str(script), "--sizes", "64", "--repeats", "1", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| 64³")]
    assert [line.split("|")[2].strip() for line in table] == ["raw", "wrapper", "ngff-zarr"]
    assert list(tmp_path.iterdir()) == []  # the scratch folder is removed
