"""data_helpers._fastimport: jsonschema is imported without the IRI grammar that takes seconds to build."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Each entry point that imports jsonschema, run first in a fresh interpreter. With rfc3987_syntax installed
# (Jupyter brings it), jsonschema's first import would compile an IRI grammar for a format check not used here:
# about 3 s, at the first glue of every chapter (glue -> myst_nb -> nbformat -> jsonschema) or validation.
ENTRY_POINTS = {
    "glue": "from data_helpers.claims import glue\nglue('x', 1)\nassert 'nbformat' in sys.modules",
    "validate_ome_zarr": (
        "import numpy as np\nfrom data_helpers import validate_ome_zarr, write_ome_zarr\n"
        "path = sys.argv[1] + '/a.ome.zarr'\n"
        "write_ome_zarr(np.zeros((8, 8), np.uint8), path, voxel_size=1, unit='um', progress=False)\n"
        "assert validate_ome_zarr(path).ok"
    ),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_entry_point_does_not_build_jsonschemas_iri_grammar(entry, tmp_path):
    code = (f"import sys\n{ENTRY_POINTS[entry]}\nassert 'jsonschema' in sys.modules\n"
            "print('rfc3987_syntax' in sys.modules)\n"
            "import importlib.util; print(importlib.util.find_spec('rfc3987_syntax') is not None)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    grammar_loaded, installed = out.stdout.split()[-2:]
    assert grammar_loaded == "False"
    if installed != "True":
        pytest.fail("rfc3987_syntax is not installed, so this test checks nothing; it comes with Jupyter")
