"""House style of the public API: every public name is documented with an example."""

from __future__ import annotations

import inspect

import pytest

import data_helpers

PUBLIC = [getattr(data_helpers, name) for name in data_helpers.__all__]
CALLABLES = [obj for obj in PUBLIC if inspect.isfunction(obj) or inspect.isclass(obj)]


def test_all_names_exist():
    for name in data_helpers.__all__:
        assert hasattr(data_helpers, name), name


@pytest.mark.parametrize("obj", CALLABLES, ids=lambda o: o.__name__)
def test_public_callables_have_docstrings(obj):
    doc = inspect.getdoc(obj) or ""
    assert len(doc.splitlines()) >= 1 and doc.splitlines()[0].strip(), f"{obj.__name__} has no summary line"


@pytest.mark.parametrize(
    "func", [o for o in CALLABLES if inspect.isfunction(o)], ids=lambda o: o.__name__
)
def test_public_functions_have_examples_and_hints(func):
    doc = inspect.getdoc(func) or ""
    assert "Examples" in doc and ">>>" in doc, f"{func.__name__} has no Examples section"
    sig = inspect.signature(func)
    assert sig.return_annotation is not inspect.Signature.empty, f"{func.__name__} lacks a return type hint"
    for param in sig.parameters.values():
        assert param.annotation is not inspect.Parameter.empty, f"{func.__name__}({param.name}) lacks a type hint"


def test_error_types_are_specific():
    assert issubclass(data_helpers.DataUnavailableError, RuntimeError)
    assert issubclass(data_helpers.OutputFolderError, RuntimeError)
