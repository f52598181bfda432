"""Intersphinx inventories kept in the repository, so the book builds without the network.

The book links to the documentation of Python, NumPy, Zarr and Dask with roles such as
{py:class}`numpy.ndarray`. Sphinx resolves them from each project's ``objects.inv``; the files in
``book/_ext/inventories/`` are used instead of downloading them at build time (``_config.yml``,
``intersphinx_mapping``).

Refresh them from the web, when online (run from the repository's folder)::

    .venv/bin/python book/_ext/inventories.py download

Without the network, ``generate`` writes small inventories of the public API of the installed NumPy
and Zarr instead (their documentation's address pattern, one entry per public function, class and
method); ``python`` and ``dask`` can be taken from Debian's ``python3-doc`` and ``python-dask-doc``
packages with ``copy-debian``::

    .venv/bin/python book/_ext/inventories.py generate numpy zarr
    .venv/bin/python book/_ext/inventories.py copy-debian python dask
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import shutil
import sys
import urllib.request
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent / "inventories"

#: name: (documentation's base address, the package to generate from, Debian's copy)
PROJECTS = {
    "python": ("https://docs.python.org/3", None, "/usr/share/doc/python3/html/objects.inv"),
    "numpy": ("https://numpy.org/doc/stable", "numpy", None),
    "zarr": ("https://zarr.readthedocs.io/en/stable", "zarr", None),
    "dask": ("https://docs.dask.org/en/stable", "dask", "/usr/share/doc/python-dask-doc/html/objects.inv"),
}


def inventory_path(name: str) -> Path:
    """The inventory file of project ``name`` in the repository."""
    return HERE / f"{name}.inv"


def download(name: str) -> None:
    """Replace the stored inventory of ``name`` with the one its documentation publishes."""
    url = f"{PROJECTS[name][0]}/objects.inv"
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https addresses
        data = response.read()
    if not data.startswith(b"# Sphinx inventory version 2"):
        raise SystemExit(f"{url} is not a Sphinx inventory (version 2); nothing was replaced.")
    inventory_path(name).write_bytes(data)
    print(f"{name}: {len(data)} bytes from {url}")


def copy_debian(name: str) -> None:
    """Copy the inventory that Debian's documentation package of ``name`` installs."""
    source = PROJECTS[name][2]
    candidates = [Path(source)] if source else []
    if name == "python":
        candidates += sorted(Path("/usr/share/doc").glob("python3.*/html/objects.inv"), reverse=True)
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise SystemExit(f"no Debian inventory for {name}: apt-get install python3-doc python-dask-doc")
    shutil.copyfile(found, inventory_path(name))
    print(f"{name}: copied {found}")


def _entries_numpy(module) -> list[tuple[str, str, str]]:
    entries = [("numpy", "py:module", "reference/index.html#module-numpy")]
    for attr in sorted(dir(module)):
        if attr.startswith("_"):
            continue
        obj = getattr(module, attr)
        full = f"numpy.{attr}"
        uri = f"reference/generated/{full}.html#{full}"
        if inspect.isclass(obj):
            entries.append((full, "py:class", uri))
            if attr in ("ndarray", "dtype"):
                for member in sorted(vars(obj)):
                    if not member.startswith("_"):
                        role = "py:method" if callable(getattr(obj, member, None)) else "py:attribute"
                        name = f"{full}.{member}"
                        entries.append((name, role, f"reference/generated/{name}.html#{name}"))
        elif callable(obj):
            entries.append((full, "py:function", uri))
    return entries


def _entries_zarr(module) -> list[tuple[str, str, str]]:
    # zarr 3's documentation (mkdocs) has a page per class and per top-level function, with the full
    # dotted name as the anchor: api/zarr/array/#zarr.Array, api/zarr/functions/open_array/#zarr.open_array.
    # Only names whose page follows that pattern are listed; anything else is left to a real inventory.
    entries = []
    for attr in sorted(getattr(module, "__all__", [])):
        obj = getattr(module, attr, None)
        full = f"zarr.{attr}"
        if attr in ("Array", "Group"):
            page = f"api/zarr/{attr.lower()}/"
            entries.append((full, "py:class", f"{page}#{full}"))
            for member in sorted(vars(obj)):
                if not member.startswith("_"):
                    role = "py:method" if callable(getattr(obj, member, None)) else "py:property"
                    entries.append((f"{full}.{member}", role, f"{page}#{full}.{member}"))
        elif inspect.isfunction(obj):
            entries.append((full, "py:function", f"api/zarr/functions/{attr}/#{full}"))
    return entries


def generate(name: str) -> None:
    """Write an inventory of the installed package's public API, with its documentation's address pattern."""
    package = PROJECTS[name][1]
    module = importlib.import_module(package)
    entries = {"numpy": _entries_numpy, "zarr": _entries_zarr}[name](module)
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {name}\n"
        f"# Version: {module.__version__}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    body = "".join(f"{full} {role} 1 {uri} -\n" for full, role, uri in entries).encode()
    inventory_path(name).write_bytes(header + zlib.compress(body, 9))
    print(f"{name}: {len(entries)} entries generated from {package} {module.__version__}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["download", "generate", "copy-debian"])
    parser.add_argument("names", nargs="*", default=list(PROJECTS), help=f"any of {list(PROJECTS)}")
    args = parser.parse_args(argv)
    HERE.mkdir(exist_ok=True)
    for name in args.names:
        {"download": download, "generate": generate, "copy-debian": copy_debian}[args.action](name)


if __name__ == "__main__":
    main(sys.argv[1:])
