"""Refuse every network connection that would leave this machine (loopback only).

The book is built, and its tests run, without the internet: every server a chapter
talks to runs on 127.0.0.1. :func:`install` makes that a rule inside one Python
process: connecting a socket to an address that is not a loopback address, or
resolving a host name other than ``localhost``, raises :class:`OutsideNetworkError`
instead of reaching the network. :func:`uninstall` lifts the rule.

The build turns it on in every notebook kernel: ``tasks.py`` sets
``PYTHONSTARTUP`` to this package's ``kernel_startup.py`` file, which IPython runs
when a kernel starts, and :envvar:`DATA_HELPERS_LOOPBACK_ONLY` to ``1``, which tells
that file to call :func:`install`. A reader's own kernels are not affected.

What it does not cover: programs that a kernel starts in another process (they
would need the same variables), and sockets opened by compiled libraries that
do not go through Python's :mod:`socket` module (ZeroMQ, which the kernel itself
uses to talk to Jupyter on loopback).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading

from data_helpers.errors import BookError

__all__ = ["ENV_LOOPBACK_ONLY", "OutsideNetworkError", "install", "install_from_environment",
           "installed", "is_loopback", "uninstall"]

#: Set to ``1`` to refuse non-loopback connections in a kernel started with
#: ``PYTHONSTARTUP`` pointing at ``data_helpers/kernel_startup.py``.
ENV_LOOPBACK_ONLY = "DATA_HELPERS_LOOPBACK_ONLY"
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_lock = threading.Lock()
_originals: dict[str, object] = {}


class OutsideNetworkError(BookError, RuntimeError):
    """A connection to an address outside this machine was refused by :func:`install`.

    It is a :class:`RuntimeError`, not an :class:`OSError`, so that code which
    treats network errors as "offline, carry on" does not hide it.
    """


def is_loopback(host: object) -> bool:
    """``True`` if ``host`` names this machine: a loopback IP address or ``localhost``.

    Examples
    --------
    >>> from data_helpers.netguard import is_loopback
    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("8.8.8.8")
    (True, True, True, False)
    """
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").lower().rstrip(".")
    if name in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> OutsideNetworkError:
    return OutsideNetworkError(
        f"{what}: only loopback addresses (127.0.0.1, ::1, localhost) may be reached here, because "
        f"{ENV_LOOPBACK_ONLY}=1 or data_helpers.netguard.install() forbids the outside network. "
        f"Serve the data from this machine (data_helpers.LocalServer, data_helpers.s3server.LocalS3Server), "
        f"or show code that needs the internet without running it."
    )


def _check_address(sock: socket.socket, address: object) -> None:
    family = getattr(sock, "family", None)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return  # Unix sockets and others never leave the machine
    host = address[0] if isinstance(address, tuple) and address else address
    if not is_loopback(host):
        raise _refuse(f"connecting to {host!r}")


def installed() -> bool:
    """``True`` while :func:`install` is in effect."""
    return bool(_originals)


def install() -> None:
    """Refuse, from now on in this process, every connection that would leave the machine.

    Patches :meth:`socket.socket.connect`, ``connect_ex``, ``sendto`` and
    :func:`socket.getaddrinfo`; calling it twice is harmless.

    Examples
    --------
    >>> import socket
    >>> from data_helpers import netguard
    >>> netguard.install()
    >>> try:
    ...     socket.create_connection(("192.0.2.1", 80), timeout=1)
    ... except netguard.OutsideNetworkError as error:
    ...     print("refused")
    refused
    >>> netguard.uninstall()
    """
    with _lock:
        if _originals:
            return
        connect, connect_ex, sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
        getaddrinfo = socket.getaddrinfo

        def guarded_connect(self, address):
            _check_address(self, address)
            return connect(self, address)

        def guarded_connect_ex(self, address):
            _check_address(self, address)
            return connect_ex(self, address)

        def guarded_sendto(self, data, *args):
            _check_address(self, args[-1] if args else None)
            return sendto(self, data, *args)

        def guarded_getaddrinfo(host, *args, **kwargs):
            if host is not None and not is_loopback(host):
                raise _refuse(f"looking up the address of {host!r}")
            return getaddrinfo(host, *args, **kwargs)

        _originals.update(connect=connect, connect_ex=connect_ex, sendto=sendto, getaddrinfo=getaddrinfo)
        socket.socket.connect = guarded_connect
        socket.socket.connect_ex = guarded_connect_ex
        socket.socket.sendto = guarded_sendto
        socket.getaddrinfo = guarded_getaddrinfo


def uninstall() -> None:
    """Lift what :func:`install` did; harmless if it was not installed.

    Examples
    --------
    >>> from data_helpers import netguard
    >>> netguard.uninstall(); netguard.installed()
    False
    """
    with _lock:
        if not _originals:
            return
        socket.socket.connect = _originals["connect"]
        socket.socket.connect_ex = _originals["connect_ex"]
        socket.socket.sendto = _originals["sendto"]
        socket.getaddrinfo = _originals["getaddrinfo"]
        _originals.clear()


def install_from_environment() -> bool:
    """Call :func:`install` if :envvar:`DATA_HELPERS_LOOPBACK_ONLY` is ``1``; return whether it did.

    Examples
    --------
    >>> import os
    >>> from data_helpers.netguard import install_from_environment
    >>> os.environ.get("DATA_HELPERS_LOOPBACK_ONLY") == "1" or not install_from_environment()
    True
    """
    if os.environ.get(ENV_LOOPBACK_ONLY, "") == "1":
        install()
        return True
    return False
