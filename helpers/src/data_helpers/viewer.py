"""Screenshots of a web viewer (Neuroglancer) drawn by headless Chromium, in little memory.

A web viewer draws with WebGL. On a machine without a GPU, Chromium draws WebGL in software
(SwiftShader), which :data:`CHROMIUM_FLAGS` turns on. The same flags run the whole browser in one
process (``--single-process --no-zygote``): a browser normally starts six or more processes, and the
libraries each one maps count again in each one's resident memory, so one process fits a chapter's
memory budget where the usual set does not.

:func:`screenshot_neuroglancer` drives Chromium itself over the DevTools protocol (a WebSocket on
127.0.0.1), without a separate driver process, and waits until Neuroglancer reports that it has drawn
every visible chunk.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "find_chromium", "screenshot_neuroglancer"]

#: The Chromium executable: ``TEXTBOOK_CHROMIUM`` if set, else ``/usr/bin/chromium`` (Debian's package).
CHROMIUM = os.environ.get("TEXTBOOK_CHROMIUM", "/usr/bin/chromium")

#: Chromium's command-line flags for WebGL in software, in one process.
CHROMIUM_FLAGS = (
    "--use-angle=swiftshader",  # WebGL drawn by the CPU: no GPU needed
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--single-process",  # one process instead of six or more: about half the memory
    "--no-zygote",
    # No crash reporter: its two chrome_crashpad_handler processes outlive the browser, and where the
    # process that inherits them does not reap them (PID 1 of a container) they stay as zombies.
    "--disable-crashpad-for-testing",
    "--disable-breakpad",
    "--disable-crash-reporter",
)

_READY = "Boolean(window.viewer && window.viewer.isReady())"


def find_chromium(executable: str | os.PathLike | None = None) -> str:
    """Return the path of the Chromium executable, or raise saying how to install one.

    Parameters
    ----------
    executable
        A path or a command name; :data:`CHROMIUM` by default.

    Returns
    -------
    str
        The path of the executable.

    Raises
    ------
    FileNotFoundError
        If there is no such executable.

    Examples
    --------
    >>> from data_helpers.viewer import find_chromium
    >>> find_chromium()  # doctest: +SKIP
    '/usr/bin/chromium'
    """
    name = os.fspath(executable if executable is not None else CHROMIUM)
    found = name if Path(name).is_file() else shutil.which(name)
    if not found:
        raise FileNotFoundError(
            f"No Chromium executable at {name!r}. Install Chromium (Debian and Ubuntu: "
            f"`apt-get install chromium`), or set TEXTBOOK_CHROMIUM to the path of a Chromium or "
            f"Chrome executable."
        )
    return str(found)


class _DevTools:
    """A minimal client of the DevTools protocol: commands in order, events kept as they arrive.

    Each command has ``timeout_s`` seconds in all for its reply, however many events arrive meanwhile.
    """

    def __init__(self, ws_url: str, timeout_s: float):
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=timeout_s, suppress_origin=True)
        self.timeout_s = timeout_s
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"Chromium did not answer {method} within {self.timeout_s:g} s.")
            self.ws.settimeout(left)
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"Chromium refused {method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def close(self) -> None:
        self.ws.close()


def _console_lines(events: list[dict]) -> list[str]:
    """``"type: text"`` for each console message, failed request and uncaught error, in order."""
    lines = []
    for event in events:
        params = event.get("params", {})
        if event["method"] == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            lines.append(f"{params.get('type', 'log')}: {text}")
        elif event["method"] == "Log.entryAdded":
            entry = params.get("entry", {})
            lines.append(f"{entry.get('level', 'info')}: {entry.get('text', '')}")
        elif event["method"] == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            lines.append(f"error: {text}")
    return lines


def _devtools_port(profile: Path, process: subprocess.Popen, deadline: float) -> int:
    """The port Chromium chose, from the file it writes in its profile folder."""
    port_file = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Chromium exited at start (status {process.returncode}).")
        try:
            return int(port_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            time.sleep(0.05)
    raise TimeoutError("Chromium did not open its DevTools port in time.")


def _reap_crash_handlers() -> list[int]:
    """Reap ``chrome_crashpad_handler`` processes that ended as zombie children of this process.

    A crash handler that a browser started is handed to this process when the browser exits if this
    process is PID 1 (a container) or a child subreaper; it would stay a zombie until reaped. Only
    zombies whose name is the crash handler's are reaped, one by one, by process id (Linux only).
    """
    reaped = []
    proc = Path("/proc")
    if not proc.is_dir():
        return reaped
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1: stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) < 2 or fields[0] != "Z" or int(fields[1]) != me or not name.startswith("chrome_crashpad"):
            continue
        try:
            if os.waitpid(int(entry.name), os.WNOHANG)[0]:
                reaped.append(int(entry.name))
        except ChildProcessError:
            pass
    return reaped


def screenshot_neuroglancer(
    url: str,
    path: str | os.PathLike,
    width: int = 960,
    height: int = 720,
    timeout_s: float = 60.0,
    chromium: str | os.PathLike | None = None,
) -> list[str]:
    """Open a Neuroglancer viewer in headless Chromium, wait until it has drawn, save a PNG screenshot.

    Chromium runs with :data:`CHROMIUM_FLAGS` (software WebGL, one process), as a child of this
    process, and is closed as soon as the screenshot is saved.

    Parameters
    ----------
    url
        The viewer's address, such as ``viewer.get_viewer_url()`` of a ``neuroglancer.Viewer``.
    path
        Where to write the PNG file (replaced if it exists).
    width, height
        Size of the page in pixels.
    timeout_s
        Seconds to wait for the viewer to report every visible chunk drawn.
    chromium
        The Chromium executable; :data:`CHROMIUM` by default.

    Returns
    -------
    list of str
        The browser console's messages, ``"type: text"`` (``"error: Failed to load resource: ..."``
        for a request that failed), for checks that the data source loaded.

    Raises
    ------
    FileNotFoundError
        If there is no Chromium executable.
    ValueError
        If ``width`` or ``height`` is not a positive number of pixels.
    TimeoutError
        If the viewer has not drawn every visible chunk after ``timeout_s`` seconds (a wrong
        source address, or a server that does not answer).

    Examples
    --------
    >>> import neuroglancer
    >>> from data_helpers.viewer import screenshot_neuroglancer
    >>> viewer = neuroglancer.Viewer()  # doctest: +SKIP
    >>> console = screenshot_neuroglancer(viewer.get_viewer_url(), "view.png")  # doctest: +SKIP
    """
    for name, value in (("width", width), ("height", height)):
        if not (isinstance(value, int) and value > 0):
            raise ValueError(f"{name} must be a positive number of pixels, got {value!r}.")
    executable = find_chromium(chromium)
    deadline = time.monotonic() + timeout_s
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile_dir:
        profile = Path(profile_dir)
        command = [executable, "--headless", *CHROMIUM_FLAGS, "--no-first-run", "--no-sandbox",
                   "--disable-extensions", "--disable-background-networking", "--mute-audio",
                   "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                   f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        devtools = None
        try:
            port = _devtools_port(profile, process, deadline)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout_s) as r:
                targets = json.load(r)
            page = next(t for t in targets if t.get("type") == "page")
            devtools = _DevTools(page["webSocketDebuggerUrl"], timeout_s)
            for domain in ("Page", "Runtime", "Log"):
                devtools.call(f"{domain}.enable")
            devtools.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                          deviceScaleFactor=1, mobile=False)
            devtools.call("Page.navigate", url=url)
            while True:
                ready = devtools.call("Runtime.evaluate", expression=_READY, returnByValue=True)
                if ready.get("result", {}).get("value") is True:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"The viewer had not drawn every visible chunk after {timeout_s:g} s. Check "
                        f"that its data source address is right and that the data server answers.\n"
                        f"Console: {_console_lines(devtools.events)[-5:]}"
                    )
                time.sleep(0.2)
            shot = devtools.call("Page.captureScreenshot", format="png")
            Path(path).write_bytes(base64.b64decode(shot["data"]))
            return _console_lines(devtools.events)
        finally:
            if devtools is not None:
                try:
                    devtools.call("Browser.close")
                except Exception:  # it is closing already
                    pass
                devtools.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            _reap_crash_handlers()
