"""Smoke test of the built website in a real headless Chromium (Debian's package).

Run after the book build (``python3 tasks.py test`` does both). The site is
served from ``_build/html`` on 127.0.0.1; every request to any other host is
blocked by the test and recorded, so the check also proves the pages need no
internet. Screenshots go to ``data/screenshots/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import REPO, skip_or_fail, toc_files
from data_helpers.server import LocalServer

pytestmark = pytest.mark.browser

HTML = Path(os.environ.get("TEXTBOOK_HTML", REPO / "_build" / "html"))
SCREENSHOTS = REPO / "data" / "screenshots"
CHROMIUM = os.environ.get("TEXTBOOK_CHROMIUM", "/usr/bin/chromium")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}



def _pages() -> list[tuple[str, str, str, bool]]:
    """(name, path under _build/html, title expected, has code cells): the home page, then every page in the TOC."""
    pages = [("home", "index.html", "Enormous 3D images", False)]
    for file in toc_files():
        text = (REPO / f"{file}.md").read_text()
        heading = next(line[2:].strip() for line in text.splitlines() if line.startswith("# "))
        pages.append((Path(file).name, f"{file}.html", heading, "```{code-cell}" in text))
    return pages


PAGES = _pages()

# Console errors that the theme itself produces and that do not mean a broken page.
# Each entry: (substring of the message, why it is harmless). Keep this list short.
KNOWN_THEME_MESSAGES: list[tuple[str, str]] = [
    (
        "Got invalid theme mode: . Resetting to auto.",
        "pydata-sphinx-theme 0.17 logs this as an error on a first visit, when the fresh "
        "browser profile has no light/dark choice stored yet; it then uses 'auto'.",
    ),
]


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").is_file():
        skip_or_fail("the book is not built (run: python3 tasks.py book)")
    with LocalServer(HTML) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        skip_or_fail(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - pinned in requirements.txt
        skip_or_fail("playwright is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-domain-reliability",
            ],
        )
        yield browser
        browser.close()


def _is_local(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "about", "chrome-error"):
        return True
    return parsed.hostname in LOCAL_HOSTS


@pytest.mark.parametrize(("name", "path", "title", "has_code"), PAGES, ids=[p[0] for p in PAGES])
def test_page_renders_without_errors(site, browser, name, path, title, has_code):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []

    def guard(route):
        if _is_local(route.request.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    page = context.new_page()
    page_errors: list[str] = []
    console_errors: list[tuple[str, str]] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: console_errors.append((msg.text, msg.location.get("url", "")))
        if msg.type == "error"
        else None,
    )
    failed_local: list[str] = []
    page.on(
        "requestfailed",
        lambda req: failed_local.append(f"{req.url}: {req.failure}") if _is_local(req.url) else None,
    )

    response = page.goto(f"{site.url}/{path}", wait_until="load")
    assert response is not None and response.ok, f"{path} answered {response and response.status}"
    page.wait_for_load_state("networkidle")
    # Scroll through the page so that lazily loaded images load too.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_load_state("networkidle")

    assert title in page.title(), f"page title {page.title()!r} lacks {title!r}"
    assert page.locator("article").count() >= 1, "no article: the page body did not render"

    images = page.evaluate(
        """() => Array.from(document.images).map(img => ({
            src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth,
            alt: img.getAttribute('alt')}))"""
    )
    broken = [img["src"] for img in images if not (img["complete"] and img["width"] > 0)]
    assert not broken, f"images that did not load on {path}: {broken}"

    # Error outputs may only appear in cells tagged raises-exception.
    stray_tracebacks = page.evaluate(
        """() => Array.from(document.querySelectorAll('.output.traceback, .output.error'))
                 .filter(el => !el.closest('.tag_raises-exception')).length"""
    )
    assert stray_tracebacks == 0, f"{stray_tracebacks} error output(s) in cells not tagged raises-exception"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    context.close()

    assert not page_errors, f"uncaught JavaScript errors on {path}: {page_errors}"
    assert not failed_local, f"local requests that failed on {path}: {failed_local}"
    unexplained = [
        (text, url)
        for text, url in console_errors
        if url not in blocked and not any(known in text for known, _why in KNOWN_THEME_MESSAGES)
    ]
    assert not unexplained, f"console errors on {path}: {unexplained} (blocked outside requests: {blocked})"
    figures = [img for img in images if "_images/" in img["src"]]
    if has_code:
        assert figures, f"{path}: a chapter with code shows no figure"
    assert all(img["alt"] for img in figures), f"figures without alt text on {path}: {figures}"


def _open(site, browser, path: str, width: int, height: int):
    """A page of the built site in a fresh context of the given size, outside requests blocked."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.route("**/*", lambda route: route.continue_() if _is_local(route.request.url) else route.abort())
    page = context.new_page()
    page.goto(f"{site.url}/{path}", wait_until="load")
    page.wait_for_load_state("networkidle")
    return context, page


@pytest.mark.parametrize(("name", "path", "title", "has_code"), PAGES, ids=[p[0] for p in PAGES])
def test_tables_fit_at_1280_px(site, browser, name, path, title, has_code):
    """Every table in the text is fully visible at 1280 px: no column cut off or hidden behind a scroll bar."""
    context, page = _open(site, browser, path, 1280, 900)
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('article table')]
                .filter(t => t.scrollWidth > t.clientWidth + 1)
                .map(t => (t.querySelector('th, td') || t).innerText.slice(0, 40))"""
    )
    context.close()
    assert not clipped, f"{path}: tables wider than the page at 1280 px: {clipped}"


@pytest.mark.parametrize(("name", "path", "title", "has_code"), PAGES, ids=[p[0] for p in PAGES])
def test_page_fits_a_phone(site, browser, name, path, title, has_code):
    """At phone width the page itself never scrolls sideways; wide tables and code scroll inside their box."""
    context, page = _open(site, browser, path, 390, 844)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_load_state("networkidle")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    unboxed = page.evaluate(
        """() => [...document.querySelectorAll('article table')]
                .filter(t => t.scrollWidth > t.clientWidth + 1 && getComputedStyle(t).overflowX !== 'auto')
                .length"""
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    context.close()
    assert overflow <= 1, f"{path}: the page is {overflow} px wider than a 390 px phone screen"
    assert unboxed == 0, f"{path}: {unboxed} wide table(s) that do not scroll inside their own box"
