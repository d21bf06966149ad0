"""Vendoring the python3 wrapper's dependencies, so that a job's own requirements always win.

The wrapper needs starlette, uvicorn, anyio and a few more; a job may pin other versions of the
very same packages (FastAPI pins its Starlette, Flask its Jinja2). One process has one module
per name, so the two cannot share names: the wrapper's dependencies are installed into a
separate folder and moved under ``racetrack_job_wrapper/_vendor/``, and every absolute import
of one of them, in the wrapper and in the dependencies themselves, is rewritten to its vendored
name (``import starlette.routing`` becomes ``import racetrack_job_wrapper._vendor.starlette
.routing``), as pip does with its own dependencies. The job's environment then holds the job's
requirements only, and the wrapper never sees them.

Besides import statements, string literals that name a module path (uvicorn's
``"uvicorn.protocols.http.auto:AutoHTTPProtocol"``, anyio's ``f"anyio._backends._{name}"``) are
rewritten too; logger names (a string given to ``getLogger``) are left as they are.

This module uses only the standard library and is also run as a script inside a job's image
build: ``python3 vendoring.py INSTALL_DIR PACKAGE_DIR``.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import tokenize
from collections.abc import Iterable, Sequence
from pathlib import Path

VENDOR_FOLDER = "_vendor"
#: Files of an install folder that are not importable code: left out of the vendored copy.
_SKIPPED = re.compile(r"(\.dist-info|\.egg-info|\.data)$|^(bin|__pycache__|share)$")
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)
_FSTRING_MIDDLE = getattr(tokenize, "FSTRING_MIDDLE", None)
#: Calls whose first argument names a module (``importlib.resources.files("pkg")``).
_IMPORTERS = frozenset({"files", "import_module", "find_spec", "__import__", "import_from_string"})
_MODULE_PATH = re.compile(r"^(?P<head>[A-Za-z_]\w*)(?P<rest>(\.[A-Za-z_{][\w{}]*)*(:[\w.]+)?)$")


def top_level_names(install_dir: Path) -> list[str]:
    """The importable top-level names (packages, modules, extensions) in an install folder."""
    names = set()
    for entry in install_dir.iterdir():
        if _SKIPPED.search(entry.name):
            continue
        if entry.is_dir() and (entry / "__init__.py").exists():
            names.add(entry.name)
        elif entry.is_dir() and any(entry.glob("*.py")):
            names.add(entry.name)  # a namespace package
        elif entry.suffix == ".py" or entry.suffix in (".so", ".pyd"):
            names.add(entry.name.split(".", 1)[0])
    return sorted(names)


def rewrite_source(text: str, names: Iterable[str], prefix: str) -> str:
    """``text`` with every absolute import of one of ``names`` moved under ``prefix``."""
    vendored = frozenset(names)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return text
    edits: list[tuple[tuple[int, int], tuple[int, int], str]] = []
    for statement in _statements(tokens):
        edits.extend(_rewrite_import(tokens, statement, vendored, prefix))
    for index, token in enumerate(tokens):
        if token.type == tokenize.STRING and token.start[0] == token.end[0]:
            replacement = _rewrite_string(
                token.string, vendored, prefix, bare=_called_with(tokens, index) in _IMPORTERS
            )
            if replacement is not None and not _logger_name(tokens, index):
                edits.append((token.start, token.end, replacement))
        elif _FSTRING_MIDDLE is not None and token.type == _FSTRING_MIDDLE and index > 0:
            # Python 3.12 and later split f-strings into parts (PEP 701): the text before the
            # first replacement field is its own token.
            opening = tokens[index - 1]
            head = re.match(r"[A-Za-z_]\w*", token.string)
            if (
                opening.type == _FSTRING_START
                and head is not None
                and head.group() in vendored
                and token.string[head.end() : head.end() + 1] == "."
                and not _logger_name(tokens, index - 1)
            ):
                edits.append((token.start, token.end, f"{prefix}.{token.string}"))
    lines = text.splitlines(keepends=True)
    for (row, start), (_, end), replacement in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:start] + replacement + line[end:]
    return "".join(lines)


def vendor(install_dir: Path, package_dir: Path) -> list[str]:
    """Move what ``install_dir`` holds into ``package_dir/_vendor`` and rewrite the imports of
    the whole package; return the vendored top-level names."""
    names = top_level_names(install_dir)
    destination = package_dir / VENDOR_FOLDER
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    (destination / "__init__.py").write_text(
        '"""The wrapper\'s dependencies, vendored (see vendoring.py)."""\n', encoding="utf-8"
    )
    for entry in install_dir.iterdir():
        if not _SKIPPED.search(entry.name):
            shutil.move(str(entry), str(destination / entry.name))
    prefix = f"{package_dir.name}.{VENDOR_FOLDER}"
    for path in sorted(package_dir.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rewritten = rewrite_source(text, names, prefix)
        if rewritten != text:
            _replace(path, rewritten)
    return names


def _replace(path: Path, text: str) -> None:
    """Write ``text`` as a new file: installers hard-link files from their caches, and writing
    into such a file in place would change the cache and every environment sharing it."""
    fresh = path.with_name(path.name + ".vendoring")
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, path)


def _statements(tokens: Sequence[tokenize.TokenInfo]) -> Iterable[list[int]]:
    """The indexes of each simple statement's tokens, without layout tokens."""
    skip = (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)
    statement: list[int] = []
    for index, token in enumerate(tokens):
        if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or token.string == ";":
            if statement:
                yield statement
            statement = []
        elif token.type not in skip:
            statement.append(index)


def _rewrite_import(
    tokens: Sequence[tokenize.TokenInfo], statement: list[int], names: frozenset[str], prefix: str
) -> list[tuple[tuple[int, int], tuple[int, int], str]]:
    """The edit that vendors one import statement, if it imports a vendored module.

    ``from x.y import z`` only needs its module renamed; ``import x.y`` binds the name ``x``, so
    it becomes ``import P.x.y; from P import x``, and ``import x as z`` becomes ``import P.x as z``.
    """
    words = [tokens[index] for index in statement]
    first = words[0]
    if first.string == "from":
        if len(words) > 1 and words[1].type == tokenize.NAME and words[1].string in names:
            return [(words[1].start, words[1].end, f"{prefix}.{words[1].string}")]
        return []
    if first.string != "import" or words[-1].end[0] != first.start[0]:
        return []  # not an import, or one continued over lines (not found in practice)
    clauses: list[list[str]] = [[]]
    for word in words[1:]:
        if word.string == ",":
            clauses.append([])
        else:
            clauses[-1].append(word.string)
    if not any(clause and clause[0] in names for clause in clauses):
        return []
    parts = []
    for clause in clauses:
        text = " ".join(clause).replace(" . ", ".")
        module, _, alias = text.partition(" as ")
        if clause[0] not in names:
            parts.append(f"import {text}")
        elif alias:
            parts.append(f"import {prefix}.{module} as {alias}")
        elif "." in module:
            parts.append(f"import {prefix}.{module}; from {prefix} import {clause[0]}")
        else:
            parts.append(f"from {prefix} import {module}")
    return [(first.start, words[-1].end, "; ".join(parts))]


def _logger_name(tokens: Sequence[tokenize.TokenInfo], index: int) -> bool:
    """A string given to ``getLogger(...)``: a logger's name, not a module path."""
    return _called_with(tokens, index) == "getLogger"


def _called_with(tokens: Sequence[tokenize.TokenInfo], index: int) -> str | None:
    """The function's name when the string at ``index`` is a call's first argument."""
    before = [t for t in tokens[max(0, index - 3) : index] if t.type != tokenize.NL]
    if len(before) >= 2 and before[-1].string == "(" and before[-2].type == tokenize.NAME:
        return before[-2].string
    return None


def _rewrite_string(
    literal: str, names: frozenset[str], prefix: str, *, bare: bool = False
) -> str | None:
    """The literal renamed when it is a dotted module path (or, with ``bare``, a module's
    name alone) starting with a vendored name."""
    found = re.match(r"^([rRbBfFuU]*)('''|\"\"\"|'|\")(.*)\2$", literal, re.DOTALL)
    if found is None or "b" in found.group(1).lower():
        return None
    body = found.group(3)
    path = _MODULE_PATH.match(body)
    if path is None or path.group("head") not in names or not (path.group("rest") or bare):
        return None
    return f"{found.group(1)}{found.group(2)}{prefix}.{body}{found.group(2)}"


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 vendoring.py INSTALL_DIR PACKAGE_DIR", file=sys.stderr)
        return 2
    names = vendor(Path(argv[0]), Path(argv[1]))
    print(f"vendored into {argv[1]}/{VENDOR_FOLDER}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
