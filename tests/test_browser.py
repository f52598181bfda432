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

#: Outside hosts that pages tried to load from (blocked by the tests), for the report written at the end.
OUTSIDE_HOSTS: dict[str, set[str]] = {}
REPORT = REPO / "data" / "browser-report.txt"

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
            OUTSIDE_HOSTS.setdefault(urlparse(route.request.url).hostname or "?", set()).add(path)
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


# -- site-wide checks, generic over the table of contents -----------------------------------------------------

def _article_checks(page) -> dict:
    """Headings, images and text contrast of the page's article, measured in the browser."""
    return page.evaluate(
        r"""() => {
        const article = document.querySelector('article') || document.body;
        const headings = [...article.querySelectorAll('h1, h2, h3, h4, h5, h6')]
            .filter(h => h.offsetParent !== null || h.closest('details'))
            .map(h => ({level: Number(h.tagName[1]), text: h.innerText.trim().slice(0, 50)}));
        const images = [...document.images].map(img => ({
            src: img.currentSrc || img.src, loaded: img.complete && img.naturalWidth > 0,
            alt: img.getAttribute('alt'), inArticle: article.contains(img)}));
        function rgba(text) {
            const m = text.match(/rgba?\(([^)]+)\)/);
            if (!m) return [0, 0, 0, 0];
            const v = m[1].split(',').map(Number);
            return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
        }
        function background(el) {
            let colour = [255, 255, 255];
            const layers = [];
            for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
                const bg = rgba(getComputedStyle(node).backgroundColor);
                if (bg[3] > 0) layers.push(bg);
                if (bg[3] >= 1) break;
            }
            for (const bg of layers.reverse()) {
                colour = colour.map((c, i) => bg[i] * bg[3] + c * (1 - bg[3]));
            }
            return colour;
        }
        function luminance(c) {
            const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        }
        const low = [];
        const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
        const seen = new Set();
        while (walker.nextNode()) {
            const el = walker.currentNode.parentElement;
            if (!walker.currentNode.textContent.trim() || seen.has(el)) continue;
            seen.add(el);
            const style = getComputedStyle(el);
            if (el.offsetParent === null || style.visibility === 'hidden' || Number(style.opacity) === 0) continue;
            const fg = rgba(style.color);
            const bg = background(el);
            const mixed = fg.slice(0, 3).map((c, i) => c * fg[3] + bg[i] * (1 - fg[3]));
            const [a, b] = [luminance(mixed), luminance(bg)].sort((x, y) => y - x);
            const ratio = (a + 0.05) / (b + 0.05);
            const size = parseFloat(style.fontSize);
            const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
            if (ratio < (large ? 3 : 4.5)) {
                low.push({text: walker.currentNode.textContent.trim().slice(0, 40), ratio: Math.round(ratio * 100) / 100,
                          color: style.color, tag: el.tagName, cls: el.className});
            }
        }
        return {headings, images, low};
    }"""
    )


@pytest.mark.parametrize(("name", "path", "title", "has_code"), PAGES, ids=[p[0] for p in PAGES])
def test_page_is_accessible(site, browser, name, path, title, has_code):
    """Images load and have alt text; headings start at one h1 and never skip a level; text contrast meets WCAG AA."""
    context, page = _open(site, browser, path, 1280, 900)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_load_state("networkidle")
    found = _article_checks(page)
    context.close()
    broken = [img["src"] for img in found["images"] if not img["loaded"]]
    assert not broken, f"{path}: images that did not load: {broken}"
    no_alt = [img["src"] for img in found["images"] if img["inArticle"] and not (img["alt"] or "").strip()]
    assert not no_alt, f"{path}: images without alt text: {no_alt}"
    levels = [h["level"] for h in found["headings"]]
    assert levels and levels[0] == 1 and levels.count(1) == 1, f"{path}: headings {found['headings'][:5]}"
    jumps = [(a, b) for a, b in zip(found["headings"], found["headings"][1:]) if b["level"] > a["level"] + 1]
    assert not jumps, f"{path}: headings skip a level: {jumps}"
    assert not found["low"], f"{path}: text below WCAG AA contrast: {found['low'][:10]}"


def _local_links(page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll('a[href]')]
            .map(a => a.href)
            .filter(h => h.startsWith(location.origin))"""
    )


def test_every_internal_link_resolves(site, browser):
    """Every link from a page of the TOC to the site itself reaches a file, and its #anchor exists there."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route("**/*", lambda route: route.continue_() if _is_local(route.request.url) else route.abort())
    page = context.new_page()
    links: dict[str, set[str]] = {}
    for _name, path, _title, _code in PAGES:
        page.goto(f"{site.url}/{path}", wait_until="load")
        page.wait_for_load_state("networkidle")
        for href in _local_links(page):
            links.setdefault(href, set()).add(path)
    context.close()
    broken = []
    ids_cache: dict[Path, str] = {}
    for href, sources in sorted(links.items()):
        parsed = urlparse(href)
        target = HTML / parsed.path.lstrip("/")
        if parsed.path.endswith("/"):
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href} (from {sorted(sources)[0]}): no such file")
            continue
        if parsed.fragment and target.suffix == ".html":
            html = ids_cache.setdefault(target, target.read_text(errors="replace"))
            if f'id="{parsed.fragment}"' not in html and f"name=\"{parsed.fragment}\"" not in html:
                broken.append(f"{href} (from {sorted(sources)[0]}): no #{parsed.fragment} there")
    assert len(links) > 20, f"only {len(links)} internal links found; did the pages render?"
    assert not broken, "internal links that do not resolve:\n" + "\n".join(broken[:20])


@pytest.mark.parametrize("word", ["chunk", "shard"])
def test_search_finds(site, browser, word):
    context, page = _open(site, browser, f"search.html?q={word}", 1280, 900)
    page.wait_for_selector("#search-results ul.search li", timeout=30_000)
    hits = page.locator("#search-results ul.search li").count()
    titles = page.locator("#search-results ul.search li a").all_inner_texts()
    context.close()
    assert hits >= 1, f"the search for {word!r} found nothing"
    assert any(t.strip() for t in titles)


CHAPTER_PAGES = [p for p in PAGES if p[3]]


@pytest.mark.parametrize(("name", "path", "title", "has_code"), CHAPTER_PAGES, ids=[p[0] for p in CHAPTER_PAGES])
def test_exercise_solutions_are_hidden_and_toggle(site, browser, name, path, title, has_code):
    """A solution is hidden when the page opens; a click on it shows it."""
    context, page = _open(site, browser, path, 1280, 900)
    dropdown = page.locator("#exercises .admonition.dropdown").first
    assert dropdown.count() == 1, f"{path}: no solution dropdown under Exercises"
    body = dropdown.locator("p:not(.admonition-title)").first
    assert not body.is_visible(), f"{path}: the first solution is visible before a click"
    dropdown.locator(".admonition-title, button.toggle-button").first.click()
    page.wait_for_timeout(500)
    assert body.is_visible(), f"{path}: a click did not show the solution"
    hidden_code = page.locator("#exercises details.hide").first
    assert hidden_code.count() == 1, f"{path}: no hidden solution code cell under Exercises"
    assert hidden_code.get_attribute("open") is None
    hidden_code.locator("summary").first.click()
    assert hidden_code.get_attribute("open") is not None, f"{path}: the solution's code did not open"
    context.close()


#: The smallest text a figure may show, in CSS px, at each page width (the house style).
FIGURE_TEXT_MIN_CSS_PX = {390: 9, 1280: 12}


def _made_by_matplotlib(png: bytes) -> bool:
    return b"tEXtSoftware\x00Matplotlib" in png[:4096]


@pytest.mark.parametrize("width", sorted(FIGURE_TEXT_MIN_CSS_PX))
@pytest.mark.parametrize(("name", "path", "title", "has_code"), CHAPTER_PAGES, ids=[p[0] for p in CHAPTER_PAGES])
def test_figure_text_is_legible(site, browser, name, path, title, has_code, width):
    """Every figure's smallest text shows at 9 CSS px or more on a 390 px phone, and 12 at 1280 px.

    The size comes from the PNG itself: the book's kernels record each figure's smallest text
    in image pixels (data_helpers.plotting.recorded_text_px), and the page scales the image by
    its displayed width over its natural width.
    """
    from data_helpers.plotting import recorded_text_px

    context, page = _open(site, browser, path, width, 844 if width < 500 else 900)
    # Solutions and hidden outputs are shown at the same width once opened: open them all.
    page.evaluate(
        """() => {
            document.querySelectorAll('details').forEach(d => { d.open = true; });
            document.querySelectorAll('.toggle-hidden').forEach(el => el.classList.remove('toggle-hidden'));
        }"""
    )
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_load_state("networkidle")
    images = page.evaluate(
        """() => [...document.querySelectorAll('article img')].map(img => ({
            src: new URL(img.currentSrc || img.src).pathname, natural: img.naturalWidth,
            shown: img.getBoundingClientRect().width}))"""
    )
    context.close()
    small, unrecorded, checked = [], [], 0
    for image in images:
        if "/_images/" not in image["src"] or not image["src"].endswith(".png"):
            continue
        png = (HTML / image["src"].lstrip("/")).read_bytes()
        if not _made_by_matplotlib(png):
            continue  # a screenshot: its text is the program's own, not drawn by the book
        text_px = recorded_text_px(png)
        if text_px is None:
            unrecorded.append(image["src"])
            continue
        assert image["shown"] > 0, f"{path}: {image['src']} is not shown at {width} px"
        css_px = text_px * image["shown"] / image["natural"]
        checked += 1
        if css_px < FIGURE_TEXT_MIN_CSS_PX[width]:
            small.append(f"{image['src']}: {css_px:.1f} CSS px ({text_px:g} px in a {image['natural']} px image "
                         f"shown {image['shown']:.0f} px wide)")
    assert not unrecorded, (
        f"{path}: figures without their smallest text size (draw them after use_book_style()): {unrecorded}"
    )
    assert checked or not any("/_images/" in i["src"] for i in images), f"{path}: no figure was checked"
    assert not small, (
        f"{path}: figure text below {FIGURE_TEXT_MIN_CSS_PX[width]} CSS px at {width} px: " + "; ".join(small)
    )


def test_report_outside_hosts():
    """Write which outside hosts the pages would load from (all blocked in these tests) into data/."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    lines = ["Outside hosts the built site tries to load from (blocked by the browser tests):"]
    lines += [f"  {host}: {len(pages)} page(s), e.g. {sorted(pages)[0]}" for host, pages in sorted(OUTSIDE_HOSTS.items())]
    if not OUTSIDE_HOSTS:
        lines.append("  none")
    REPORT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
