"""Where every error of ``data_helpers`` sends the reader: the book's troubleshooting page.

Each public exception (and warning) class of the package derives from :class:`BookError`, so its
message ends with the address of its own section of the page "Setup, offline use and
troubleshooting" (``book/setup.md``). That section says what the error means and how to get past it.

The sections are headed by the class name, so the same anchor (``#dataunavailableerror``) works on
the website and on the repository's copy of the page.
"""

from __future__ import annotations

__all__ = ["BOOK_REPOSITORY", "SETUP_PAGE", "BookError", "NotedBookError", "troubleshooting_url"]

#: The book's repository; must equal ``repository.url`` in ``_config.yml`` (a test checks this).
BOOK_REPOSITORY = "https://github.com/HEFTIEProject/heftie-textbook"

#: The page, relative to the repository, that has a troubleshooting section for every error.
SETUP_PAGE = "book/setup.md"


def troubleshooting_url(error: type[BaseException] | BaseException) -> str:
    """Return the address of the troubleshooting section about an exception class.

    Parameters
    ----------
    error
        An exception class of ``data_helpers``, or an instance of one.

    Returns
    -------
    str
        The address of the page ``book/setup.md``, with the class name (lower case) as its anchor.

    Examples
    --------
    >>> from data_helpers.errors import troubleshooting_url
    >>> from data_helpers import DataUnavailableError
    >>> troubleshooting_url(DataUnavailableError).endswith("book/setup.md#dataunavailableerror")
    True
    """
    cls = error if isinstance(error, type) else type(error)
    return f"{BOOK_REPOSITORY}/blob/main/{SETUP_PAGE}#{cls.__name__.lower()}"


class BookError(Exception):
    """Base of the package's exceptions: the message ends with the address of its troubleshooting section.

    Put it first among the bases, before the built-in class the exception also is
    (``class DataUnavailableError(BookError, RuntimeError)``), so ``except RuntimeError`` still
    catches it.
    """

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}\nTroubleshooting: {troubleshooting_url(self)}"


class NotedBookError(Exception):
    """Like :class:`BookError`, but the address is a note shown under the message, not part of ``str()``.

    For exceptions whose text is reused inside other messages (a unit's error becomes the fix of a
    validation finding), where an address in the middle of a sentence would not help.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.add_note(f"Troubleshooting: {troubleshooting_url(self)}")
