"""Vendoring the wrapper's dependencies: import statements and module-path strings renamed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from uv import find_uv_bin

from racetrack_plugins.python3 import vendoring
from racetrack_plugins.python3.vendoring import rewrite_source, top_level_names, vendor

NAMES = ["click", "anyio", "uvloop", "uvicorn", "swagger_ui_bundle"]


def rewrite(text: str) -> str:
    return rewrite_source(text, NAMES, "pkg._vendor")


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("import click\n", "from pkg._vendor import click\n"),
        ("import anyio as a\n", "import pkg._vendor.anyio as a\n"),
        (
            "import click.testing, os\n",
            "import pkg._vendor.click.testing; from pkg._vendor import click; import os\n",
        ),
        ("from anyio.abc import X\n", "from pkg._vendor.anyio.abc import X\n"),
        ("from anyio import (\n    X,\n)\n", "from pkg._vendor.anyio import (\n    X,\n)\n"),
        ("if x:\n    import uvloop\n", "if x:\n    from pkg._vendor import uvloop\n"),
        ('P = "uvicorn.http.auto:Auto"\n', 'P = "pkg._vendor.uvicorn.http.auto:Auto"\n'),
        ('m = f"anyio._backends._{name}"\n', 'm = f"pkg._vendor.anyio._backends._{name}"\n'),
        ('files("swagger_ui_bundle")\n', 'files("pkg._vendor.swagger_ui_bundle")\n'),
    ],
)  # fmt: skip
def test_imports_and_module_paths_move_under_the_prefix(before: str, after: str) -> None:
    assert rewrite(before) == after


@pytest.mark.smoke
@pytest.mark.parametrize(
    "unchanged",
    [
        "from . import anyio\n",  # relative: already inside the package
        "from .anyio import x\n",
        "import anyioish\n",  # another name
        "import os.path\n",
        'log = logging.getLogger("uvicorn.error")\n',  # a logger's name, not a module
        'name = "click"\n',  # a bare word that is not given to an importer
        "x = anyio.run\n",  # an attribute, not an import
        "def f(:\n",  # not Python: left alone
    ],
)
def test_what_is_not_an_absolute_import_is_left_alone(unchanged: str) -> None:
    assert rewrite(unchanged) == unchanged


def test_vendor_renames_inside_the_package_and_never_writes_through_hard_links(
    tmp_path: Path,
) -> None:
    """Installers hard-link files from their caches: rewriting in place would corrupt them."""
    cache = tmp_path / "cache"
    (cache / "dep").mkdir(parents=True)
    (cache / "dep" / "__init__.py").write_text("from dep.core import VALUE\n")
    (cache / "dep" / "core.py").write_text("import dep.helpers\nVALUE = dep.helpers.X\n")
    (cache / "dep" / "helpers.py").write_text("X = 42\n")
    install = tmp_path / "install"
    (install / "dep").mkdir(parents=True)
    for name in ("__init__.py", "core.py", "helpers.py"):
        os.link(cache / "dep" / name, install / "dep" / name)
    (install / "dep-1.0.dist-info").mkdir()
    (install / "bin").mkdir()
    assert top_level_names(install) == ["dep"]
    package = tmp_path / "site" / "wrap"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from dep import VALUE\n")

    assert vendor(install, package) == ["dep"]

    assert (cache / "dep" / "core.py").read_text() == "import dep.helpers\nVALUE = dep.helpers.X\n"
    assert sorted(p.name for p in (package / "_vendor").iterdir()) == ["__init__.py", "dep"]
    done = subprocess.run(
        [sys.executable, "-c", "import wrap, sys; print(wrap.VALUE, 'dep' in sys.modules)"],
        cwd=package.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.split() == ["42", "False"], done.stderr


def pythons() -> list[str]:
    """This Python and every other CPython 3.11+ that uv finds on the machine."""
    found = [sys.executable]
    for version in ("3.12", "3.13"):
        done = subprocess.run(
            [find_uv_bin(), "python", "find", "--no-python-downloads", version],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip():
            found.append(done.stdout.strip())
    return found


def test_the_script_renames_f_strings_on_every_python_the_machine_has(tmp_path: Path) -> None:
    """Python 3.12 splits f-strings into several tokens (PEP 701); anyio finds its backends
    with ``import_module(f"anyio._backends._{name}")``."""
    for index, python in enumerate(pythons()):
        install = tmp_path / f"install{index}" / "dep"
        install.mkdir(parents=True)
        (install / "__init__.py").write_text(
            "from importlib import import_module\n"
            "def backend(name):\n"
            '    return import_module(f"dep.backends.{name}").NAME\n'
        )
        (install / "backends").mkdir()
        (install / "backends" / "__init__.py").write_text("")
        (install / "backends" / "fast.py").write_text('NAME = "fast"\n')
        package = tmp_path / f"site{index}" / "wrap"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("from dep import backend\n")

        script = Path(vendoring.__file__)
        done = subprocess.run(
            [python, str(script), str(install.parent), str(package)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        check = "import wrap, sys; print(wrap.backend('fast'), 'dep' in sys.modules)"
        done = subprocess.run(
            [python, "-c", check], cwd=package.parent, capture_output=True, text=True, check=False
        )
        assert done.stdout.split() == ["fast", "False"], (python, done.stderr)
