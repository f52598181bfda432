"""A real viewer opens the OME-Zarr images the package writes: Neuroglancer, in headless Chromium.

The viewer's client comes from the pinned ``neuroglancer`` wheel and is served by its Python server; the
image is served by neuroglancer's ``StaticFileServer`` (CORS headers), both on 127.0.0.1. Chromium draws
WebGL in software (SwiftShader), so no GPU is needed, in one process, through
``data_helpers.viewer.screenshot_neuroglancer``, the function the visualising chapter uses. The checks:
the viewer reports every visible chunk drawn, the first cross-section panel is not blank, the chunk files
were requested, no console error other than the expected 404s of Zarr version 2 metadata that the viewer
probes for first, and Chromium is closed afterwards.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import skip_or_fail
from test_jupyterlab import lab  # noqa: F401  (the JupyterLab server fixture)
from data_helpers import write_ome_zarr
from data_helpers.viewer import CHROMIUM, find_chromium, screenshot_neuroglancer


class _Requests(logging.Handler):
    """Collect the paths of the requests that tornado's access log reports."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def chromium():
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        skip_or_fail(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    return find_chromium(CHROMIUM)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("viewer")
    z, y, x = np.mgrid[0:48, 0:96, 0:96]
    volume = (((x // 12 + y // 12 + z // 12) % 2) * 200 + 20).astype(np.uint8)  # a 3D checkerboard
    write_ome_zarr(volume, folder / "checks.ome.zarr", voxel_size=(2.0, 1.0, 1.0), unit="micrometer",
                   chunks=32, progress=False)
    return folder


def _open_in_neuroglancer(chromium: str, folder: Path, image: str, shot: Path, timeout_s: float = 60):
    """Screenshot of Neuroglancer showing folder/image; returns (pixels, console, requests)."""
    import neuroglancer
    import psutil
    from neuroglancer.static_file_server import StaticFileServer
    from PIL import Image

    neuroglancer.set_server_bind_address("127.0.0.1")
    access = logging.getLogger("tornado.access")
    handler = _Requests()
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        with StaticFileServer(static_dir=str(folder), bind_address="127.0.0.1", daemon=True) as url:
            viewer = neuroglancer.Viewer()
            with viewer.txn() as state:
                state.layers["image"] = neuroglancer.ImageLayer(source=f"zarr://{url}/{image}")
                state.layout = "xy"
            try:
                console = screenshot_neuroglancer(viewer.get_viewer_url(), shot, width=640, height=480,
                                                  timeout_s=timeout_s, chromium=chromium)
            finally:
                # The browser is closed as soon as the screenshot is saved (or the wait gave up).
                browsers = [p for p in psutil.Process().children(recursive=True)
                            if "chrom" in p.name() and p.status() != psutil.STATUS_ZOMBIE]
                assert not browsers, browsers
    finally:
        access.removeHandler(handler)
    pixels = np.asarray(Image.open(shot).convert("L"))
    return pixels, console, handler.lines


def _panel(pixels: np.ndarray) -> np.ndarray:
    """The data panel: below the two bars at the top (about 50 pixels), away from the edges."""
    return pixels[80:-30, 30:-30]


def test_neuroglancer_draws_an_image_written_by_write_ome_zarr(chromium, image_folder, tmp_path):
    pixels, console, requests = _open_in_neuroglancer(
        chromium, image_folder, "checks.ome.zarr", tmp_path / "shot.png")
    panel = _panel(pixels)
    # The checkerboard's dark and bright squares each cover over 1 % of the panel (about 2 % here).
    dark, bright = (panel < 60).mean(), (panel > 150).mean()
    assert dark > 0.01 and bright > 0.01, (dark, bright)
    assert any("/checks.ome.zarr/zarr.json" in r and r.startswith("200") for r in requests), requests
    assert any("/checks.ome.zarr/" in r and "/c/" in r and r.startswith("200") for r in requests), requests
    errors = [m for m in console if m.startswith("error") and "Failed to load resource" not in m]
    assert not errors, errors


def test_the_checks_see_a_missing_image(chromium, image_folder, tmp_path):
    """The viewer never reports an absent image drawn: the wait gives up, and zarr.json was a 404."""
    requests = _Requests()
    logging.getLogger("tornado.access").addHandler(requests)
    try:
        with pytest.raises(TimeoutError, match="had not drawn every visible chunk"):
            _open_in_neuroglancer(chromium, image_folder, "absent.ome.zarr", tmp_path / "absent.png",
                                  timeout_s=15)
    finally:
        logging.getLogger("tornado.access").removeHandler(requests)
    assert any("/absent.ome.zarr/" in r for r in requests.lines), requests.lines
    assert not any("/absent.ome.zarr/zarr.json" in r and r.startswith("200") for r in requests.lines)
    assert not (tmp_path / "absent.png").exists()


def test_screenshot_neuroglancer_rejects_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="TEXTBOOK_CHROMIUM"):
        find_chromium(tmp_path / "no-such-chromium")
    with pytest.raises(ValueError, match="width must be a positive number of pixels"):
        screenshot_neuroglancer("http://127.0.0.1:1/", tmp_path / "x.png", width=0)


def test_a_devtools_command_has_an_overall_deadline_however_many_events_arrive():
    """A page that logs without pause keeps messages coming: the wait for a reply must still end."""
    import time

    from data_helpers.viewer import _DevTools

    class Chatty:  # a WebSocket whose every message is an event, never the reply
        def send(self, _text):
            pass

        def settimeout(self, _seconds):
            pass

        def recv(self):
            time.sleep(0.01)
            return '{"method": "Runtime.consoleAPICalled", "params": {"args": []}}'

    devtools = _DevTools.__new__(_DevTools)
    devtools.ws, devtools.timeout_s, devtools.next_id, devtools.events = Chatty(), 0.5, 0, []
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="did not answer Runtime.evaluate within 0.5 s"):
        devtools.call("Runtime.evaluate", expression="1")
    assert time.monotonic() - start < 5
    assert devtools.events, "the events that arrived meanwhile are kept"


# --- the z slider of the visualising chapter, in JupyterLab ---------------------------------------------


def _slider_cell() -> str:
    """The chapter's code cell that defines and shows the slider, as the reader runs it."""
    import jupytext

    from conftest import REPO

    notebook = jupytext.read(REPO / "book" / "visualising.md")
    cells = [c.source for c in notebook.cells if c.cell_type == "code" and "def z_slider" in c.source]
    assert len(cells) == 1, "the chapter should have one cell that defines z_slider"
    return cells[0]


@pytest.mark.browser
@pytest.mark.timeout(900)
def test_the_chapter_slider_redraws_the_plane_in_jupyterlab(lab):
    """The slider renders as a widget (not as text), and moving it draws another plane."""
    import nbformat
    from playwright.sync_api import sync_playwright

    from test_jupyterlab import CHROMIUM as LAB_CHROMIUM
    from test_jupyterlab import LAUNCH_ARGS, _run_all

    url, token, root = lab
    setup = (
        "import matplotlib.pyplot as plt\n"
        "from pathlib import Path\n"
        "from data_helpers import open_ome_zarr, synthetic_volume, write_ome_zarr\n"
        "from data_helpers.plotting import contrast_limits, show_plane\n"
        "image_path = Path('slider.ome.zarr')\n"
        "if not image_path.exists():\n"
        "    write_ome_zarr(synthetic_volume((32, 96, 96), chunks=32), image_path,\n"
        "                   voxel_size=(2.0, 0.5, 0.5), unit='micrometer', chunks=32, progress=False)\n"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup),
                                               nbformat.v4.new_code_cell(_slider_cell())])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / "slider.ipynb")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=LAB_CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/lab/tree/slider.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            _run_all(page)
            page.wait_for_selector(".widget-slider", timeout=300_000)
            image = page.locator("img.widget-image").first
            image.wait_for(timeout=120_000)
            before = image.get_attribute("src")
            label = page.locator(".widget-readout").first.inner_text()
            page.locator(".widget-slider .noUi-handle").first.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "before => { const img = document.querySelector('img.widget-image');"
                " return img && img.getAttribute('src') !== before && img.complete && img.naturalWidth > 0; }",
                arg=before, timeout=120_000,
            )
            after_label = page.locator(".widget-readout").first.inner_text()
        finally:
            browser.close()
    assert int(after_label) == int(label) + 1, (label, after_label)


def _zombie_crash_handlers() -> list[int]:
    """Process ids of this process's zombie children named like Chromium's crash handler."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.find("(") + 1: stat.rfind(")")]
            state, ppid = stat[stat.rfind(")") + 2:].split()[:2]
            if state == "Z" and int(ppid) == os.getpid() and name.startswith("chrome_crashpad"):
                found.append(int(entry.name))
    return found


@pytest.fixture()
def subreaper():
    """This process adopts orphaned descendants, as PID 1 of a container does (Linux only)."""
    import ctypes

    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux (/proc and prctl)")
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    assert libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        libc.prctl(pr_set_child_subreaper, 0, 0, 0, 0)
        for pid in _zombie_crash_handlers():  # reap what a failing run left, so later tests start clean
            os.waitpid(pid, os.WNOHANG)


def test_a_screenshot_leaves_no_zombie_process(chromium, image_folder, tmp_path, subreaper):
    _open_in_neuroglancer(chromium, image_folder, "checks.ome.zarr", tmp_path / "shot.png")
    assert not _zombie_crash_handlers()


def test_crash_handlers_handed_to_this_process_are_reaped(tmp_path, subreaper):
    """A crash handler orphaned by its browser becomes this process's child; the screenshot reaps it."""
    import subprocess
    import threading

    from data_helpers.viewer import _reap_crash_handlers

    handler = tmp_path / "chrome_crashpad_handler"
    shutil.copy(shutil.which("true"), handler)
    subprocess.run(["sh", "-c", f"'{handler}' &"], check=True)  # sh exits first: its child is orphaned
    for _ in range(200):
        if _zombie_crash_handlers():
            break
        threading.Event().wait(0.05)
    zombies = _zombie_crash_handlers()
    assert zombies, "the orphaned handler should have become a zombie child of this process"
    assert sorted(_reap_crash_handlers()) == sorted(zombies)
    assert not _zombie_crash_handlers()
