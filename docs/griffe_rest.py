"""A griffe extension for the API site: the reST markup inside jaxid's Markdown docstrings, as Markdown.

jaxid's docstrings are Markdown (``**Arguments:**`` lists, ````code````) with a few reST constructs
kept for their meaning: cross-references (``:func:`simulate```, ``:class:`~jaxid.identify.Experiment```),
inline and display mathematics (``:math:`x```, ``.. math::``) and literal blocks (``Typical use::``).
This extension rewrites them before mkdocstrings renders the docstrings:

- a cross-reference becomes an optional autorefs link: a link where the target is on the site, code
  text otherwise (so a reference to a private helper or to the standard library is not an error);
  names are resolved like Python names from the object's module (``.fisher`` relative to the
  package, ``Experiment`` through the module's imports);
- ``:math:`x``` becomes ``\\(x\\)`` and a ``.. math::`` block one ``\\[ ... \\]`` block per equation,
  rendered by MathJax through ``pymdownx.arithmatex``;
- a paragraph ending in ``::`` followed by an indented block becomes a fenced Python code block.
"""

from __future__ import annotations

import html
import re
import textwrap

import griffe

ROLE = re.compile(r":(?:py:)?(?P<role>func|class|meth|mod|attr|data|exc|obj|const):`(?P<body>[^`]+)`")
MATH = re.compile(r":math:`(?P<body>[^`]+)`")
DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. math::\s*(?P<rest>.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, base: int) -> int:
    """The index after the block of lines indented deeper than ``base`` (blank lines included)
    that starts at ``start``."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def _display_math(lines: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(lines):
        m = DIRECTIVE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m["indent"]
        end = _block(lines, i + 1, len(indent))
        body = [m["rest"]] if m["rest"].strip() else []
        body += lines[i + 1 : end]
        # One display per paragraph (a blank line separates equations in a reST math block).
        equations, current = [], []
        for line in [*textwrap.dedent("\n".join(body)).split("\n"), ""]:
            if line.strip():
                current.append(line.rstrip())
            elif current:
                equations.append(current)
                current = []
        for k, eq in enumerate(equations):
            if k:
                out.append("")
            out += [f"{indent}\\[", *(f"{indent}{e}" for e in eq), f"{indent}\\]"]
        i = end
    return out


def _literal_blocks(lines: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and not DIRECTIVE.match(line):
            text = line.rstrip()[:-2].rstrip()
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            base = _indent(line)
            if j < len(lines) and _indent(lines[j]) > base:
                end = _block(lines, j, base)
                if text:
                    out += [text + ":", ""]
                pad = " " * base
                code = textwrap.dedent("\n".join(lines[j:end])).split("\n")
                out += [f"{pad}```python", *(f"{pad}{c}" if c else "" for c in code), f"{pad}```"]
                i = end
                continue
        out.append(line)
        i += 1
    return out


class ReSTToMarkdown(griffe.Extension):
    """Rewrite every docstring of the loaded package once it is loaded (names then resolve)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        self._walk(pkg, seen=set())

    def _walk(self, obj: griffe.Object, seen: set) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = self.convert(obj.docstring.value, obj)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)

    def convert(self, text: str, obj: griffe.Object) -> str:
        lines = _literal_blocks(_display_math(text.split("\n")))
        text = "\n".join(lines)
        # Roles are rewritten outside fenced code only.
        parts = re.split(r"(```python\n.*?```)", text, flags=re.S)
        for k in range(0, len(parts), 2):
            parts[k] = MATH.sub(lambda m: f"\\({m['body']}\\)", parts[k])
            parts[k] = ROLE.sub(lambda m: self._reference(m, obj), parts[k])
        return "".join(parts)

    def _reference(self, match: re.Match, obj: griffe.Object) -> str:
        body = match["body"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", body)
        if explicit:
            title, target = explicit["title"], explicit["target"]
        else:
            target = body.lstrip("!")
            short = target.startswith("~")
            target = target.lstrip("~")
            title = target.split(".")[-1] if short else target.lstrip(".")
        identifier = self._resolve(target.lstrip("~"), obj)
        return (
            f'<autoref identifier="{html.escape(identifier)}" optional>'
            f"<code>{html.escape(title)}</code></autoref>"
        )

    @staticmethod
    def _resolve(target: str, obj: griffe.Object) -> str:
        module = obj if obj.is_module else obj.module
        if target.startswith("."):  # relative to the module's package, as Sphinx reads it
            package = module if module.is_init_module else module.parent
            return f"{package.path}{target}" if package is not None else target.lstrip(".")
        head, _, rest = target.partition(".")
        scope = obj
        while scope is not None:  # the object's own members, then its parents', then the module's
            if head in scope.members:
                member = scope.members[head]
                try:
                    path = member.target_path if member.is_alias else member.path
                except Exception:  # an alias whose target is outside the loaded packages
                    path = member.path
                return f"{path}.{rest}" if rest else path
            scope = scope.parent
        return target
