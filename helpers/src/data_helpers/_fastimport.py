"""Import jsonschema without the IRI grammar that makes its first import take seconds.

When ``rfc3987_syntax`` is installed (Jupyter pulls it in), importing jsonschema compiles a grammar for
the optional "iri" format check, which takes 2-3 s. Nothing in this package, nor nbformat (which
``myst_nb.glue`` imports), checks that format, so the module is kept out of jsonschema's first import.
It stays importable afterwards.
"""

from __future__ import annotations

import sys


def import_jsonschema():
    """Return the jsonschema module, importing it without ``rfc3987_syntax`` if it is not loaded yet."""
    if "jsonschema" in sys.modules:
        return sys.modules["jsonschema"]
    block = "rfc3987_syntax" not in sys.modules
    if block:
        sys.modules["rfc3987_syntax"] = None  # makes "import rfc3987_syntax" raise ImportError
    try:
        import jsonschema
    finally:
        if block and sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]
    return jsonschema
