"""Base-image declarations, apt sources, cache keys and root trimming (no root, no engine).

The command that builds real images is tested in ``tests/cli/test_image_commands.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from racetrack_core import hookimpl
from racetrack_core.baseimages import (
    BaseImageError,
    BaseImageRegistry,
    BaseImageSpec,
    declared_base_images,
    rootfs,
)
from racetrack_core.baseimages.aptsources import find_mirror, read_sources
from racetrack_core.baseimages.bootstrap import (
    BootstrapOptions,
    cache_key,
    options_from_settings,
    plan,
)
from racetrack_core.baseimages.engine import DockerEngine
from racetrack_core.errors import RegistrationError
from racetrack_core.plugins import PluginManager
from racetrack_core.recipes import BuildSettings, DebianBase, ImageContext, JobSpec, Recipes
from racetrack_core.registry import JobTypeRegistrar
from racetrack_core.settings import Settings
from racetrack_core.testing.plugin import RegisterPlugin

MIRROR = "http://mirror.example/debian"
SECURITY = "http://mirror.example/debian-security"

DEB822 = f"""\
# The main archive; a commented URI is not a source:
# URIs: http://old.example/debian
Types: deb deb-src
URIs: {MIRROR}/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {SECURITY}
Suites: bookworm-security
Components: main

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: trixie
"""

ONE_LINE = f"""\
# deb http://commented.example/debian bookworm main
deb-src http://source-only.example/debian bookworm main
deb [arch=amd64 enabled=no] http://disabled.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {MIRROR} bookworm main
deb {SECURITY} bookworm-security main  # security updates
"""


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "apt"
    (folder / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# ---------------------------------------------------------------- declarations


def test_registry_keeps_declarations_by_name_and_names_the_plugin() -> None:
    registry = BaseImageRegistry()
    spec = registry.registrar("kiln").register("kiln/base:bookworm", ["python3", "curl"])
    assert spec == BaseImageSpec("kiln/base:bookworm", ("python3", "curl"), "bookworm", "kiln")
    # Two job types sharing one image may both declare it, as long as they agree.
    registry.registrar("oven").register("kiln/base:bookworm", ["python3", "curl"])
    assert list(registry) == [spec]
    with pytest.raises(RegistrationError, match=r"plugin 'oven'.*plugin 'kiln' declared already"):
        registry.registrar("oven").register("kiln/base:bookworm", ["python3"])


@pytest.mark.parametrize(
    ("name", "packages", "suite", "complaint"),
    [
        ("Kiln/Base", ["python3"], "bookworm", "named 'Kiln/Base'.*image reference"),
        ("kiln/base", [], "bookworm", "with no package"),
        ("kiln/base", ["python3", "rm -rf"], "bookworm", "package 'rm -rf'.*Debian package name"),
        ("kiln/base", ["python3"], "Bookworm 12", "suite 'Bookworm 12'.*Debian codename"),
    ],
)
def test_registry_rejects_malformed_declarations(
    name: str, packages: list[str], suite: str, complaint: str
) -> None:
    registrar = BaseImageRegistry().registrar("kiln")
    with pytest.raises(RegistrationError, match=f"plugin 'kiln' declared .*{complaint}"):
        registrar.register(name, packages, suite=suite)


def test_select_names_the_declared_images_when_one_is_unknown() -> None:
    registry = BaseImageRegistry()
    registry.registrar("kiln").register("kiln/a:1", ["python3"])
    registry.registrar("kiln").register("kiln/b:1", ["golang"])
    assert [spec.name for spec in registry.select([])] == ["kiln/a:1", "kiln/b:1"]
    assert [spec.name for spec in registry.select(["kiln/b:1"])] == ["kiln/b:1"]
    with pytest.raises(BaseImageError, match=r"'kiln/c:1'\. Declared: kiln/a:1, kiln/b:1"):
        registry.select(["kiln/c:1"])


class NodeImage:
    """An image recipe that declares its base image's Debian packages."""

    def __init__(self, debian_base: object) -> None:
        self.debian_base = debian_base

    def render(
        self, spec: JobSpec, directory: Path, secrets_dir: Path, settings: BuildSettings
    ) -> ImageContext:
        raise AssertionError("not built here")


def node_plugin(debian_base: object, versions: tuple[str, ...] = ("1.0.0",)) -> object:
    class Node:
        @hookimpl
        def register_job_types(self, registry: JobTypeRegistrar) -> None:
            for version in versions:
                registry.register("node", version, recipes=Recipes(image=NodeImage(debian_base)))

    return Node()


def test_an_image_recipe_declares_its_base_image(
    racetrack_plugin_manager: PluginManager, racetrack_register_plugin: RegisterPlugin
) -> None:
    base = DebianBase("acme/node-base:bookworm", ("nodejs", "ca-certificates"))
    # Two versions of the job type on one base image: one declaration.
    racetrack_register_plugin(node_plugin(base, ("1.0.0", "1.1.0")), "node")
    declared = {spec.name: spec for spec in declared_base_images(racetrack_plugin_manager)}
    assert declared["acme/node-base:bookworm"] == BaseImageSpec(
        "acme/node-base:bookworm", ("nodejs", "ca-certificates"), "bookworm", "node"
    )
    assert declared["racetrack/python3-base:bookworm"].plugin == "python3"


@pytest.mark.parametrize(
    ("debian_base", "complaint"),
    [
        (DebianBase("acme/node", ("node js",)), "package 'node js'.*Debian package name"),
        (DebianBase("acme/node", ()), "with no package"),
        (
            DebianBase("acme/node", "nodejs"),  # type: ignore[arg-type]
            r"packages 'nodejs': give a tuple of package names",
        ),
        (("acme/node", ["nodejs"]), "debian_base is a tuple: give a racetrack_core.recipes.Debian"),
    ],
)
def test_a_malformed_declaration_is_refused_when_the_job_type_registers(
    racetrack_plugin_manager: PluginManager,
    racetrack_register_plugin: RegisterPlugin,
    debian_base: object,
    complaint: str,
) -> None:
    racetrack_register_plugin(node_plugin(debian_base), "node")
    with pytest.raises(RegistrationError, match=f"plugin 'node' .*{complaint}"):
        racetrack_plugin_manager.job_types  # noqa: B018 (building the registry raises)


# ---------------------------------------------------------------- apt sources


def test_mirror_from_a_deb822_sources_file(tmp_path: Path) -> None:
    folder = apt_dir(tmp_path, {"sources.list.d/debian.sources": DEB822})
    source = find_mirror("bookworm", folder)
    assert (source.uri, source.origin) == (MIRROR, folder / "sources.list.d/debian.sources")
    assert find_mirror("bookworm-security", folder).uri == SECURITY
    # The disabled stanza is no source at all.
    assert [s.uri for s in read_sources(folder)] == [MIRROR, SECURITY]


def test_mirror_from_a_one_line_sources_list(tmp_path: Path) -> None:
    folder = apt_dir(tmp_path, {"sources.list": ONE_LINE})
    assert find_mirror("bookworm", folder).uri == MIRROR
    assert [s.uri for s in read_sources(folder)] == [MIRROR, SECURITY]


def test_sources_list_comes_before_the_folder_as_in_apt(tmp_path: Path) -> None:
    other = "deb http://first.example/debian bookworm main\n"
    folder = apt_dir(
        tmp_path,
        {
            "sources.list": other,
            "sources.list.d/a.list": ONE_LINE,
            "sources.list.d/b.sources": DEB822,
            "sources.list.d/c.disabled": "deb http://ignored.example/debian bookworm main\n",
        },
    )
    uris = [s.uri for s in read_sources(folder)]
    assert uris[:2] == ["http://first.example/debian", MIRROR]
    assert "http://ignored.example/debian" not in uris


def test_no_source_for_the_suite_says_how_to_give_a_mirror(tmp_path: Path) -> None:
    folder = apt_dir(tmp_path, {"sources.list": "deb mirror+file:/etc/apt/m.txt bookworm main\n"})
    with pytest.raises(BaseImageError) as caught:
        find_mirror("bookworm", folder)
    message = str(caught.value)
    assert "serves Debian 'bookworm' over http, https or file (suites found: bookworm)" in message
    assert "--mirror URL or the base_images_mirror setting" in message


def test_a_mirror_with_credentials_or_no_url_is_refused_without_echoing_them(
    tmp_path: Path,
) -> None:
    spec = BaseImageSpec("a/base:1", ("python3",))
    # The mirror is resolved before the engine is asked anything: no engine is needed here.
    engine = DockerEngine(str(tmp_path / "no-docker"))
    secret = "http://deploy:hunter2@mirror.example/debian"
    folder = apt_dir(tmp_path, {"sources.list": f"deb {secret} bookworm main\n"})
    for options in (
        BootstrapOptions(cache=tmp_path, mirror=secret),
        BootstrapOptions(cache=tmp_path, apt_dir=folder),
    ):
        with pytest.raises(BaseImageError, match="user name or password in its URL") as caught:
            plan([spec], options, engine)
        assert "hunter2" not in str(caught.value)
    assert f"from {folder / 'sources.list'} has" in str(caught.value)
    with pytest.raises(BaseImageError, match=r"'mirror\.example' is not an http://"):
        plan([spec], BootstrapOptions(cache=tmp_path, mirror="mirror.example"), engine)


# ---------------------------------------------------------------- cache keys


def test_cache_key_follows_the_inputs_of_the_content_not_the_name() -> None:
    spec = BaseImageSpec("a/base:1", ("python3", "curl"))
    key = cache_key(spec, MIRROR, None)
    assert cache_key(BaseImageSpec("b/other:2", ("curl", "python3")), MIRROR + "/", None) == key
    changed = [
        cache_key(BaseImageSpec("a/base:1", ("python3",)), MIRROR, None),
        cache_key(BaseImageSpec("a/base:1", ("python3", "curl"), suite="trixie"), MIRROR, None),
        cache_key(spec, "http://other.example/debian", None),
        cache_key(spec, MIRROR, b"-----BEGIN CERTIFICATE-----\n"),
    ]
    assert key not in changed
    assert len(set(changed)) == len(changed)


def test_options_come_from_the_settings_and_options_given_win(tmp_path: Path) -> None:
    environ = {
        "RACETRACK_BASE_IMAGES_CACHE": str(tmp_path / "cache"),
        "RACETRACK_BASE_IMAGES_MIRROR": MIRROR,
        "RACETRACK_BASE_IMAGES_CA_BUNDLE": "/etc/site-ca.pem",
        "RACETRACK_BASE_IMAGES_DOCKER_CLI": "/usr/bin/docker",
    }
    settings = Settings.load({"home": tmp_path / "home"}, environ=environ)
    assert options_from_settings(settings) == BootstrapOptions(
        cache=tmp_path / "cache",
        mirror=MIRROR,
        ca_bundle=Path("/etc/site-ca.pem"),
        docker_cli="/usr/bin/docker",
    )
    given = options_from_settings(settings, mirror=SECURITY, cache=None, force=True)
    assert (given.mirror, given.cache, given.force) == (SECURITY, tmp_path / "cache", True)
    defaults = options_from_settings(Settings.load({"home": tmp_path / "home"}, environ={}))
    assert (defaults.cache, defaults.mirror, defaults.ca_bundle, defaults.docker_cli) == (
        Path("/var/cache/racetrack/base-images"),
        "",
        None,
        "docker",
    )


# ---------------------------------------------------------------- roots


def test_trim_removes_lists_docs_manuals_and_translations(tmp_path: Path) -> None:
    root = tmp_path / "root"
    files = [
        "var/lib/apt/lists/mirror_dists_bookworm_InRelease",
        "var/cache/apt/archives/python3_3.11.deb",
        "var/cache/apt/pkgcache.bin",
        "usr/share/doc/python3/changelog.gz",
        "usr/share/doc/python3/copyright",
        "usr/share/man/man1/python3.1.gz",
        "usr/share/info/dir",
        "usr/share/locale/de/LC_MESSAGES/apt.mo",
        "usr/share/locale/locale.alias",
        "usr/bin/python3",
        "etc/hostname",
        "etc/resolv.conf",
    ]
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x", encoding="utf-8")
    (root / "var/lib/apt/lists/partial").mkdir()
    (root / "var/log").mkdir(parents=True)
    (root / "var/log/dpkg.log").write_text("installed python3\n", encoding="utf-8")

    rootfs.trim(root)

    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert left == [
        "etc/dpkg/dpkg.cfg.d/racetrack-slim",
        "etc/hostname",
        "etc/resolv.conf",
        "usr/bin/python3",
        "usr/share/doc/python3/copyright",
        "usr/share/locale/locale.alias",
        "var/log/dpkg.log",
    ]
    assert (root / "var/lib/apt/lists/partial").is_dir()
    for emptied in ("var/log/dpkg.log", "etc/hostname", "etc/resolv.conf"):
        assert (root / emptied).read_text() == ""
    rules = (root / rootfs.SLIM_DPKG_CONFIG).read_text()
    assert "path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright" in rules


def test_a_ca_bundle_must_exist_and_hold_a_certificate(tmp_path: Path) -> None:
    with pytest.raises(BaseImageError, match=r"CA bundle .*missing.pem: No such file.*--ca-bundle"):
        rootfs.read_ca_bundle(tmp_path / "missing.pem")
    not_pem = tmp_path / "key.txt"
    not_pem.write_text("hello\n", encoding="utf-8")
    with pytest.raises(BaseImageError, match="holds no PEM certificate"):
        rootfs.read_ca_bundle(not_pem)


def test_a_ca_bundle_needs_ca_certificates_in_the_image(tmp_path: Path) -> None:
    with pytest.raises(
        BaseImageError, match="only be added to an image that has the ca-certificates package"
    ):
        rootfs.add_ca_bundle(tmp_path, b"-----BEGIN CERTIFICATE-----\n")


def test_remove_root_deletes_a_partial_root(tmp_path: Path) -> None:
    root = tmp_path / "key.partial"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/sh").symlink_to("/bin/dash")
    rootfs.remove_root(root)
    rootfs.remove_root(root)  # nothing left: nothing to do
    assert not root.exists()
