"""The API site's docstring conversion (docs/griffe_rest.py): reST roles, mathematics and literal
blocks in jaxid's Markdown docstrings, as Markdown that mkdocstrings renders.

The site itself is built with ``mkdocs build --strict`` in ``.ci/run``; these tests pin the rewriting
rules it depends on. They need the docs extra (``pip install -e ".[docs]"``), which CI installs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

griffe = pytest.importorskip("griffe", reason='the docs extra is not installed: pip install -e ".[docs]"')

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("griffe_rest", ROOT / "docs" / "griffe_rest.py")
griffe_rest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(griffe_rest)

CODE = '''
"""Module.

Typical use::

    x = f(1)

See :mod:`.sub` and :func:`f`.
"""
from .other import Thing


def f(x):
    r"""Return :math:`x^2`; see :class:`~pkg.other.Thing`, :class:`Thing`, :exc:`ValueError`
    and :func:`the helper <pkg.g>`.

    .. math::

        a = b

        c = d

    .. math:: e = f
    """
'''


@pytest.fixture(scope="module")
def module():
    return griffe.visit("pkg", filepath=Path("pkg/__init__.py"), code=CODE)


def convert(obj):
    return griffe_rest.ReSTToMarkdown().convert(obj.docstring.value, obj)


def ref(identifier, title):
    return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'


def test_literal_block_becomes_fenced_python(module):
    text = convert(module)
    assert "Typical use:\n\n```python\nx = f(1)\n```" in text
    assert "::" not in text


def test_references_resolve_relative_and_imported_names(module):
    text = convert(module)
    assert ref("pkg.sub", "sub") in text  # relative to the package
    assert ref("pkg.f", "f") in text  # a member of the module
    text = convert(module["f"])
    assert text.count(ref("pkg.other.Thing", "Thing")) == 2  # "~" shortens; an import resolves
    assert ref("ValueError", "ValueError") in text  # left as written: an optional link
    assert ref("pkg.g", "the helper") in text  # an explicit title


def test_mathematics_becomes_arithmatex(module):
    text = convert(module["f"])
    assert r"Return \(x^2\)" in text
    # one display per equation: the blank line inside the block separates two of them
    assert text.count("\\[") == 3 and "\\[\na = b\n\\]" in text and "\\[\ne = f\n\\]" in text
    assert ":math:" not in text and ".. math" not in text
