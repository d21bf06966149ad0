"""Test support: small job-type plugins built into wheels, served from a PEP 503 simple index.

The plugin ``racetrack-pyecho`` registers the job type ``pyecho`` in the versions it is told,
each running a job with the python3 job type's recipes (so its jobs really run); a folder
of wheels is served on 127.0.0.1 as ``/simple/<project>/`` pages linking to the files.
"""

from __future__ import annotations

import functools
import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

PLUGIN_CODE = '''"""A test job type: python3 jobs under another name, in the versions it keeps."""

from racetrack_core import hookimpl
from racetrack_plugins.python3 import EXTRA_SCHEMA, RECIPES

VERSIONS = {versions!r}


@hookimpl
def register_job_types(registry):
    for version in VERSIONS:
        registry.register(
            "pyecho",
            version,
            extra_schema=EXTRA_SCHEMA,
            description="python3 jobs, for plugin installation tests",
            recipes=RECIPES,
        )
'''

IN_TREE_BACKEND = '''"""A PEP 517 backend in the source tree: builds the wheel offline."""

import base64
import hashlib
import zipfile
from pathlib import Path

NAME = {name!r}
VERSION = {version!r}
MODULE = {module!r}
ENTRY_POINTS = {entry_points!r}


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    tag = f"{{MODULE}}-{{VERSION}}"
    files = {{
        path.as_posix(): path.read_bytes() for path in Path(MODULE).rglob("*.py")
    }}
    files[f"{{tag}}.dist-info/METADATA"] = (
        f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"
    ).encode()
    files[f"{{tag}}.dist-info/WHEEL"] = (
        b"Wheel-Version: 1.0\\nGenerator: in-tree\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    )
    files[f"{{tag}}.dist-info/entry_points.txt"] = ENTRY_POINTS.encode()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    record.append(f"{{tag}}.dist-info/RECORD,,")
    files[f"{{tag}}.dist-info/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel = f"{{tag}}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel
'''

BROKEN_CODE = 'raise RuntimeError("this plugin cannot be imported")\n'


def write_plugin(
    root: Path,
    version: str,
    job_type_versions: Sequence[str] = ("1.0.0",),
    *,
    dependencies: Sequence[str] = (),
    broken: bool = False,
    name: str = "racetrack-pyecho",
    in_tree_backend: bool = False,
) -> Path:
    """A plugin project (pyproject.toml and one module) in ``root/<name>-<version>``.

    With ``in_tree_backend`` it is built by a small PEP 517 backend of its own (for installs
    from git, whose build would otherwise need hatchling from the package index).
    """
    module = name.replace("-", "_")
    project = root / f"{name}-{version}"
    (project / module).mkdir(parents=True)
    code = BROKEN_CODE if broken else PLUGIN_CODE.format(versions=list(job_type_versions))
    (project / module / "__init__.py").write_text(code, encoding="utf-8")
    entry_points = f"[racetrack.plugins]\n{name.removeprefix('racetrack-')} = {module}\n"
    build_system = 'requires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    if in_tree_backend:
        build_system = 'requires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        backend = IN_TREE_BACKEND.format(
            name=name, version=version, module=module, entry_points=entry_points
        )
        (project / "backend.py").write_text(backend, encoding="utf-8")
    (project / "pyproject.toml").write_text(
        "[build-system]\n"
        f"{build_system}\n"
        "[project]\n"
        f'name = "{name}"\n'
        f'version = "{version}"\n'
        f"dependencies = {list(dependencies)!r}\n\n"
        '[project.entry-points."racetrack.plugins"]\n'
        f'{name.removeprefix("racetrack-")} = "{module}"\n',
        encoding="utf-8",
    )
    return project


def uv() -> str:
    """The uv command that Racetrack installs plugins with (the ``uv`` package's)."""
    from uv import find_uv_bin

    return find_uv_bin()


def build_wheel(project: Path, out: Path) -> Path:
    """Build ``project``'s wheel into ``out`` with hatchling (no network); return its path."""
    out.mkdir(parents=True, exist_ok=True)
    code = "import sys; from hatchling.build import build_wheel; print(build_wheel(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out / done.stdout.strip().splitlines()[-1]


class _IndexHandler(http.server.SimpleHTTPRequestHandler):
    """``/simple/<project>/`` lists the folder's wheels of that project; files are served."""

    def do_GET(self) -> None:
        match = re.fullmatch(r"/simple/([^/]+)/?", self.path)
        if match is None:
            super().do_GET()
            return
        project = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        folder = Path(self.directory)
        links = [
            f'<a href="/{wheel.name}">{wheel.name}</a><br>'
            for wheel in sorted(folder.glob("*.whl"))
            if re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower() == project
        ]
        if not links:
            self.send_error(404)
            return
        body = ("<!DOCTYPE html><html><body>" + "".join(links) + "</body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def simple_index(folder: Path) -> Iterator[str]:
    """Serve ``folder``'s wheels as a simple index on 127.0.0.1; yield its ``/simple`` URL."""
    handler = functools.partial(_IndexHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()
