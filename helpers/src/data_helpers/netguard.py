"""Refuse every network connection that would leave this machine (loopback only).

The book is built, and its tests run, without the internet: every server a chapter
talks to runs on 127.0.0.1. :func:`install` makes that a rule inside one Python
process: connecting or sending to an address that is not a loopback address, or
looking up a host name other than ``localhost``, raises :class:`OutsideNetworkError`
instead of reaching the network. :func:`uninstall` lifts the rule.

How: an audit hook (:func:`sys.addaudithook`) on the events that CPython's
:mod:`socket` module raises in C before it acts, so the rule holds whichever way
Python code calls it (``socket.socket.connect``, the C class ``_socket.socket``
behind it, ``connect_ex``, ``sendto``, ``sendmsg``, ``getaddrinfo``,
``gethostbyname``, ``gethostbyname_ex``, ``gethostbyaddr``, ``getnameinfo``), and
asyncio's and every library's use of them. Packet sockets (``AF_PACKET``), which
bypass addresses altogether, may not be created.

The build turns it on in every notebook kernel: ``tasks.py`` sets
``PYTHONSTARTUP`` to this package's ``kernel_startup.py`` file, which IPython runs
when a kernel starts, and :envvar:`DATA_HELPERS_LOOPBACK_ONLY` to ``1``, which tells
that file to call :func:`install`. Importing :mod:`data_helpers` with that variable
set installs it too (a dask worker, a chapter's child process). A reader's own
kernels are not affected.

What it does not cover: a process that neither runs the startup file nor imports
the package (``subprocess.run(["curl", ...])``), and compiled libraries that open
sockets without Python's :mod:`socket` module (ZeroMQ, which the kernel itself
uses to talk to Jupyter on loopback; libcurl; a C extension's own DNS lookups).
Guard those at the level of the operating system: the tests that try outside
connections on purpose run in a private network namespace (``unshare -rn``),
where nothing but loopback exists.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading

from data_helpers.errors import BookError

__all__ = ["ENV_LOOPBACK_ONLY", "OutsideNetworkError", "install", "install_from_environment",
           "installed", "is_loopback", "uninstall"]

#: Set to ``1`` to refuse non-loopback connections in a kernel started with
#: ``PYTHONSTARTUP`` pointing at ``data_helpers/kernel_startup.py``.
ENV_LOOPBACK_ONLY = "DATA_HELPERS_LOOPBACK_ONLY"
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_INTERNET_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})
#: Families whose sockets reach a network without an IP address to check.
_REFUSED_FAMILIES = frozenset(f for f in (getattr(socket, "AF_PACKET", None),) if f is not None)
_lock = threading.Lock()
# An audit hook cannot be removed: it stays registered, and checks only while _state["on"] is True.
_state = {"on": False, "hooked": False}


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
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 reaches 127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _refuse(what: str) -> OutsideNetworkError:
    return OutsideNetworkError(
        f"{what}: only loopback addresses (127.0.0.1, ::1, localhost) may be reached here, because "
        f"{ENV_LOOPBACK_ONLY}=1 or data_helpers.netguard.install() forbids the outside network. "
        f"Serve the data from this machine (data_helpers.LocalServer, data_helpers.s3server.LocalS3Server), "
        f"or show code that needs the internet without running it."
    )


def _check_socket_address(sock: object, address: object, verb: str) -> None:
    if getattr(sock, "family", None) not in _INTERNET_FAMILIES:
        return  # Unix sockets and others never leave the machine
    if address is None:
        return  # sendmsg without an address: the socket's connect was checked
    host = address[0] if isinstance(address, tuple) and address else address
    if not is_loopback(host):
        raise _refuse(f"{verb} {host!r}")


def _check_name(host: object, verb: str) -> None:
    if not is_loopback(host):
        raise _refuse(f"{verb} {host!r}")


def _audit(event: str, args: tuple) -> None:
    """The audit hook: refuse socket events that would reach beyond loopback while installed."""
    if not _state["on"] or not event.startswith("socket."):
        return  # every audit event of the process passes here: leave the others at once
    if event == "socket.connect":  # connect and connect_ex
        _check_socket_address(args[0], args[1], "connecting to")
    elif event in ("socket.sendto", "socket.sendmsg"):
        _check_socket_address(args[0], args[1], "sending to")
    elif event == "socket.getaddrinfo":
        if args[0] is not None:  # None: the local wildcard or loopback address, no lookup
            _check_name(args[0], "looking up the address of")
    elif event == "socket.gethostbyname":  # gethostbyname and gethostbyname_ex
        _check_name(args[0], "looking up the address of")
    elif event == "socket.gethostbyaddr":
        _check_name(args[0], "looking up the name of")
    elif event == "socket.getnameinfo":
        sockaddr = args[0]
        _check_name(sockaddr[0] if isinstance(sockaddr, tuple) and sockaddr else sockaddr,
                    "looking up the name of")
    elif event == "socket.__new__":
        if args[1] in _REFUSED_FAMILIES:
            raise _refuse(f"opening a packet socket (family {args[1]!r}), which sends past every address check,")


def installed() -> bool:
    """``True`` while :func:`install` is in effect.

    Examples
    --------
    >>> from data_helpers import netguard
    >>> isinstance(netguard.installed(), bool)
    True
    """
    return _state["on"]


def install() -> None:
    """Refuse, from now on in this process, every connection that would leave the machine.

    Adds an audit hook (once per process) that checks CPython's ``socket.connect``,
    ``socket.sendto``, ``socket.sendmsg``, ``socket.getaddrinfo``,
    ``socket.gethostbyname``, ``socket.gethostbyaddr``, ``socket.getnameinfo`` and
    ``socket.__new__`` events, which the C socket module raises however it is called.
    Calling it twice is harmless.

    Examples
    --------
    >>> import socket
    >>> from data_helpers import netguard
    >>> was_installed = netguard.installed()
    >>> netguard.install()
    >>> try:
    ...     socket.getaddrinfo("192.0.2.1", 80, flags=socket.AI_NUMERICHOST)
    ... except netguard.OutsideNetworkError:
    ...     print("refused")
    refused
    >>> if not was_installed:
    ...     netguard.uninstall()
    """
    with _lock:
        if not _state["hooked"]:
            sys.addaudithook(_audit)
            _state["hooked"] = True
        _state["on"] = True


def uninstall() -> None:
    """Lift what :func:`install` did; harmless if it was not installed.

    The audit hook stays registered (Python cannot remove one) but checks nothing
    until :func:`install` is called again.

    Examples
    --------
    >>> from data_helpers import netguard
    >>> was_installed = netguard.installed()
    >>> netguard.uninstall(); netguard.installed()
    False
    >>> if was_installed:
    ...     netguard.install()
    """
    with _lock:
        _state["on"] = False


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
