"""Every public exception of data_helpers names the section of the setup page that explains it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import traceback

import pytest
import yaml

import data_helpers
from conftest import REPO
from data_helpers import errors


def _public_exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.iter_modules(data_helpers.__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"data_helpers.{module_info.name}")
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj) and issubclass(obj, BaseException) and not name.startswith("_")
                and obj.__module__.startswith("data_helpers") and obj not in (errors.BookError, errors.NotedBookError)
            ):
                found[name] = obj
    return sorted(found.values(), key=lambda cls: cls.__name__)


CLASSES = _public_exception_classes()


def test_the_package_has_its_exception_classes():
    names = {cls.__name__ for cls in CLASSES}
    assert {"DataUnavailableError", "OmeZarrError", "ConvertError", "OutputFolderError"} <= names


def _shown(exc: BaseException) -> str:
    """What a reader sees of an exception: its message and its notes, as a traceback prints them."""
    return "".join(traceback.format_exception_only(exc))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_names_its_troubleshooting_section(cls):
    exc = cls("something went wrong")
    shown = _shown(exc)
    url = f"{errors.BOOK_REPOSITORY}/blob/main/book/setup.md#{cls.__name__.lower()}"
    assert "something went wrong" in shown
    assert url in shown, f"{cls.__name__}'s message does not name {url}:\n{shown}"
    assert issubclass(cls, (errors.BookError, errors.NotedBookError))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_setup_page_has_the_section_each_error_names(cls):
    text = (REPO / "book" / "setup.md").read_text()
    assert re.search(rf"^### `{cls.__name__}`$", text, flags=re.MULTILINE), (
        f"book/setup.md needs a section '### `{cls.__name__}`' (its anchor #{cls.__name__.lower()})"
    )


def test_errors_stay_the_builtin_type_they_were():
    from data_helpers import DataUnavailableError, UnitError
    from data_helpers.storeaccess import StoreAccessError

    assert issubclass(DataUnavailableError, RuntimeError)
    assert issubclass(StoreAccessError, OSError)
    with pytest.raises(ValueError, match="micrometer"):
        raise UnitError("use 'micrometer'")


def test_a_unit_error_keeps_its_text_clean_for_reuse():
    """A unit's error text becomes the fix of a validation finding; the address is a note, not the text."""
    from data_helpers import UnitError

    exc = UnitError("'furlong' is not allowed; use 'meter'")
    assert str(exc) == "'furlong' is not allowed; use 'meter'"
    assert errors.troubleshooting_url(UnitError) in _shown(exc)


def test_the_address_is_the_books_repository_of_config():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert errors.BOOK_REPOSITORY == config["repository"]["url"].rstrip("/")
