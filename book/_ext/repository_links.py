"""The book's repository address, from the one setting ``repository.url`` of ``_config.yml``.

Jupyter Book passes that setting to the theme (``html_theme_options["repository_url"]``), which
makes the repository, download and launch buttons from it. This extension offers it to the pages
as MyST substitutions, so that no page writes the address itself:

* ``{{ repository_link }}``: a link to the repository;
* ``{{ issues_link }}``: a link to its issue tracker.
"""

from __future__ import annotations


def _add_substitutions(app, config) -> None:
    url = (config.html_theme_options or {}).get("repository_url", "").rstrip("/")
    if not url:
        raise ValueError("_config.yml needs repository.url (the book's own public repository).")
    substitutions = dict(getattr(config, "myst_substitutions", None) or {})
    substitutions.setdefault("repository_url", url)
    substitutions.setdefault("repository_link", f"<{url}>")
    substitutions.setdefault("issues_link", f"[the book's issue tracker]({url}/issues)")
    config.myst_substitutions = substitutions


def setup(app):
    app.connect("config-inited", _add_substitutions, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
