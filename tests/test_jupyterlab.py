"""A chapter opened as a notebook in JupyterLab, in headless Chromium: MyST renders, numbers are in view.

The test copies the chapters into a temporary folder (so that JupyterLab can never
save over the sources), starts JupyterLab on 127.0.0.1 with the chapters set to
open as Jupytext notebooks, opens the creation chapter, runs all its cells, and
takes a screenshot of the paragraph whose numbers are glued in, saved to
``data/screenshots/jupyterlab-creating.png``.

JupyterLab with ``jupyterlab-myst`` renders MyST admonitions, ``{term}`` roles and
dropdown solutions, but it cannot fill in ``{glue:text}`` placeholders: they show
the glued name. The hidden cells that glue the numbers print ``name = value``
(``data_helpers.claims.glue``), which puts the numbers in the reader's view just
above the paragraph. The test checks both.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, skip_or_fail
from test_browser import CHROMIUM

pytestmark = pytest.mark.browser

CHAPTER = "book/creating-chunked-datasets.md"
SCREENSHOTS = REPO / "data" / "screenshots"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(folder: Path) -> None:
    """JupyterLab user settings: chapters open as notebooks, no autosave, no news, no windowing."""
    plugins = {
        "@jupyterlab/docmanager-extension/plugin": {
            "defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"},
            "autosave": False,
        },
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        # Render every cell: with windowing, cells scrolled out of view (the top, after Run All) are
        # left empty in the page, and their text cannot be checked.
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    }
    for name, values in plugins.items():
        path = folder / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        skip_or_fail(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    from data_helpers import fetch_dataset

    try:
        fetch_dataset("heart")
    except Exception as error:
        skip_or_fail(f"the sample data is not available ({type(error).__name__}); set DATA_HELPERS_MIRROR")
    root = tmp_path_factory.mktemp("lab")
    for name in ("_toc.yml", "_config.yml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("_ext", "*.ipynb"))
    _settings(root / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
           "JUPYTER_CONFIG_DIR": str(root / "config"), "JUPYTER_RUNTIME_DIR": str(root / "runtime")}
    log = (root / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--allow-root",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"JupyterLab exited: {(root / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.3)
        else:
            pytest.fail("JupyterLab did not answer within a minute")
        yield url, token, root
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _run_all(page) -> None:
    """Run > Run All Cells, once the kernel is idle; again if no cell started within 30 s."""
    for _ in range(3):
        page.wait_for_timeout(5000)  # let the kernel start and the notebook settle
        page.get_by_text("Run", exact=True).first.click()
        page.get_by_text("Run All Cells", exact=True).first.click()
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))",
                timeout=30_000,
            )
            return
        except Exception:  # the menu was clicked before the notebook was ready: try again
            page.keyboard.press("Escape")
    pytest.fail("Run All Cells did not start any cell")


@pytest.mark.timeout(1200)
def test_chapter_runs_in_jupyterlab_with_myst_rendered_and_numbers_in_view(lab):
    from playwright.sync_api import sync_playwright

    url, token, root = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/lab/tree/{CHAPTER}?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        _run_all(page)
        # Wait until every code cell has an execution count: "[12]:", not "[ ]:" or "[*]:".
        page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                return prompts.length > 20 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
            }""",
            timeout=600_000, polling=1000,
        )
        rendered = page.evaluate(
            "() => [...document.querySelectorAll('.jp-MarkdownCell')].map(c => c.innerText).join('\\n')"
        )
        unrendered = page.evaluate(
            "() => [...document.querySelectorAll('.jp-MarkdownCell')].filter(c => !c.innerText.trim()).length"
        )
        assert unrendered == 0, f"{unrendered} Markdown cells are not rendered in the page (windowing?)"
        printed = page.locator(".jp-OutputArea-output", has_text="heart_shape = 120 × 120 × 139")
        assert printed.count() == 1, "the glue cell did not print heart_shape = ... in JupyterLab"
        paragraph = page.locator(".jp-MarkdownCell", has_text="voxels of type")
        paragraph.first.scroll_into_view_if_needed()
        printed.first.scroll_into_view_if_needed()
        page.mouse.wheel(0, -250)
        time.sleep(1)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab-creating.png"))
        browser.close()

    assert "Learning objectives" in rendered
    assert ":::{admonition}" not in rendered and "{term}" not in rendered, "MyST was shown as raw text"
    # Dropdown solutions stay closed: their text is not visible until opened.
    assert "One level per factor plus the full-resolution one" not in rendered
    # The chapter source was not changed by JupyterLab (no autosave; and it is a copy).
    assert (root / CHAPTER).read_text() == (REPO / CHAPTER).read_text()
