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

The statements and literals are found with :mod:`ast` (the interpreter's own parser, run by
the job's Python, so it reads the syntax of the job's Python version), and each is rewritten
in place in the source text, which otherwise stays as it was. This module uses only the
standard library and is also run as a script inside a job's image build:
``python3 vendoring.py INSTALL_DIR PACKAGE_DIR``.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

VENDOR_FOLDER = "_vendor"
#: Files of an install folder that are not importable code: left out of the vendored copy.
_SKIPPED = re.compile(r"(\.dist-info|\.egg-info|\.data)$|^(bin|__pycache__|share)$")
#: Calls whose first argument names a module (``importlib.resources.files("pkg")``).
_IMPORTERS = frozenset({"files", "import_module", "find_spec", "__import__", "import_from_string"})
_MODULE_PATH = re.compile(r"^(?P<head>[A-Za-z_]\w*)(?P<rest>(\.[A-Za-z_{][\w{}]*)*(:[\w.]+)?)$")
_LITERAL = re.compile(
    r"^(?P<prefix>[rRbBfFuU]*)(?P<quote>'\'\'|\"\"\"|'|\")(?P<body>.*)(?P=quote)$", re.S
)

Edit = tuple[int, int, int, str]  # line (from 1), start and end byte offsets, replacement


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
    """``text`` with every absolute import of one of ``names`` moved under ``prefix``.

    Text that does not parse is returned as it is.
    """
    vendored = frozenset(names)
    if not any(name in text for name in vendored):
        return text
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return text
    lines = text.encode("utf-8").splitlines(keepends=True)
    finder = _Finder(vendored, prefix, lines)
    finder.visit(tree)
    for row, start, end, replacement in sorted(finder.edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:start] + replacement.encode("utf-8") + line[end:]
    return b"".join(lines).decode("utf-8")


class _Finder(ast.NodeVisitor):
    """Collects the edits that vendor one module's imports and module-path literals."""

    def __init__(self, names: frozenset[str], prefix: str, lines: list[bytes]) -> None:
        self.names = names
        self.prefix = prefix
        self.lines = lines
        self.edits: list[Edit] = []
        self._skipped: set[int] = set()  # ids of literals that name loggers

    def source(self, node: ast.expr | ast.stmt) -> str | None:
        """The node's source text when it sits on one line."""
        if node.end_lineno != node.lineno or node.end_col_offset is None:
            return None
        line = self.lines[node.lineno - 1]
        return line[node.col_offset : node.end_col_offset].decode("utf-8")

    def replace(self, node: ast.expr | ast.stmt, text: str) -> None:
        assert node.end_col_offset is not None
        self.edits.append((node.lineno, node.col_offset, node.end_col_offset, text))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level == 0 and module.split(".")[0] in self.names:
            line = self.lines[node.lineno - 1]
            found = re.compile(rb"from\s+").match(line, node.col_offset)
            if found is not None:
                start = found.end()
                self.edits.append((node.lineno, start, start, f"{self.prefix}."))

    def visit_Import(self, node: ast.Import) -> None:
        """``import x.y`` binds ``x``: it becomes ``import P.x.y; from P import x``, and
        ``import x as z`` becomes ``import P.x as z``."""
        if not any(alias.name.split(".")[0] in self.names for alias in node.names):
            return
        if self.source(node) is None:
            return  # continued over lines with backslashes: not found in practice
        parts = []
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top not in self.names:
                named = f" as {alias.asname}" if alias.asname else ""
                parts.append(f"import {alias.name}{named}")
            elif alias.asname:
                parts.append(f"import {self.prefix}.{alias.name} as {alias.asname}")
            elif "." in alias.name:
                parts.append(f"import {self.prefix}.{alias.name}; from {self.prefix} import {top}")
            else:
                parts.append(f"from {self.prefix} import {top}")
        self.replace(node, "; ".join(parts))

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        called = function.id if isinstance(function, ast.Name) else None
        if isinstance(function, ast.Attribute):
            called = function.attr
        if node.args and called == "getLogger":
            self._skipped.add(id(node.args[0]))
        elif node.args and called in _IMPORTERS and isinstance(node.args[0], ast.Constant):
            self._literal(node.args[0], bare=True)
            self._skipped.add(id(node.args[0]))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and id(node) not in self._skipped:
            self._literal(node, bare=False)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        """An f-string whose text starts with a vendored module path: the prefix goes first."""
        if id(node) in self._skipped:
            return
        text = self.source(node)
        found = _LITERAL.match(text or "")
        if found is None or "f" not in found["prefix"].lower():
            return
        head = re.match(r"[A-Za-z_]\w*\.", found["body"])
        if head is not None and head.group()[:-1] in self.names:
            start = node.col_offset + len(found["prefix"]) + len(found["quote"])
            self.edits.append((node.lineno, start, start, f"{self.prefix}."))

    def _literal(self, node: ast.Constant, *, bare: bool) -> None:
        text = self.source(node)
        if text is None:
            return
        replacement = _rewrite_string(text, self.names, self.prefix, bare=bare)
        if replacement is not None:
            self.replace(node, replacement)


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
