"""Sphinx extension: include each script of a page only once.

sphinx-thebe 0.3.1 (required by Jupyter Book 1.0.4) adds its inline
configuration script twice per page under Sphinx 7, and the browser then
stops with "SyntaxError: Identifier 'THEBE_JS_URL' has already been declared".
This drops exact duplicates (same file, or same inline body; an inline
script has filename None or "" depending on who added it)
from every page, keeping the first. Remove it once sphinx-thebe is fixed;
tests/test_browser.py will tell.
"""

from __future__ import annotations


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    unique = []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        key = (str(getattr(script, "filename", None) or ""), tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _drop_duplicate_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
