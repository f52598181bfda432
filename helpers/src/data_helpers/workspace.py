"""Where chapters write their outputs: ``data/<name>/`` in the book's repository.

Each chapter writes into a folder of its own under ``data/``. A folder made by
:func:`output_dir` carries a marker file, and only a folder with that marker is
ever emptied (``fresh=True``). A folder you made yourself is never deleted.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

__all__ = ["OutputFolderError", "output_dir", "repository_root"]

ENV_OUTPUT = "DATA_HELPERS_OUTPUT"
MARKER = ".made-by-data_helpers"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class OutputFolderError(RuntimeError):
    """An output folder cannot be used without risking data this package did not write."""


def repository_root(start: str | os.PathLike | None = None) -> Path:
    """Return the book's repository root: the nearest folder up with ``_toc.yml``.

    Parameters
    ----------
    start
        Folder to search from; the current working folder by default.

    Raises
    ------
    FileNotFoundError
        If no parent folder holds ``_toc.yml``.

    Examples
    --------
    >>> from data_helpers import repository_root
    >>> (repository_root() / "_toc.yml").is_file()  # doctest: +SKIP
    True
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder
    raise FileNotFoundError(
        f"No _toc.yml found in {here} or any folder above it, so the book's "
        f"repository cannot be located. Run from inside the repository, or set "
        f"{ENV_OUTPUT} to the folder where outputs should go."
    )


def output_dir(name: str, fresh: bool = False) -> Path:
    """Return the output folder ``data/<name>`` of a chapter, creating it.

    Parameters
    ----------
    name
        A plain folder name, such as ``"creating"``: letters, digits, ``_``,
        ``-`` and ``.``; no path separators.
    fresh
        Empty the folder first, so a re-run starts clean. Only a folder that
        this function created (it holds the marker file) is emptied; anything
        else raises :class:`OutputFolderError` and nothing is deleted.

    Returns
    -------
    pathlib.Path
        The folder, which exists on return. Its parent is ``$DATA_HELPERS_OUTPUT``
        if set, else ``data/`` at the repository root.

    Examples
    --------
    >>> from data_helpers import output_dir
    >>> out = output_dir("creating", fresh=True)  # doctest: +SKIP
    >>> out.name  # doctest: +SKIP
    'creating'
    """
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise ValueError(
            f"Output folder name {name!r} is not a plain folder name. Use letters, "
            f"digits, '_', '-' or '.', e.g. 'creating'."
        )
    env = os.environ.get(ENV_OUTPUT, "").strip()
    parent = Path(env).expanduser().resolve() if env else repository_root() / "data"
    folder = parent / name
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{folder} exists and is not a folder. Move it away or pick another name.")
    if fresh and folder.exists():
        if not (folder / MARKER).is_file():
            raise OutputFolderError(
                f"{folder} exists but was not made by data_helpers.output_dir, so it is "
                f"not emptied. Move its contents elsewhere, or pick another name."
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    if not marker.exists():
        if any(folder.iterdir()):
            # An existing folder that someone else filled: use it, but never claim it.
            return folder
        marker.write_text("This folder was made by data_helpers.output_dir and may be emptied by it.\n")
    return folder
