"""Settings: overrides, then RACETRACK_* variables, then <home>/config.yaml, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from racetrack_core.pub.config import PubConfig, server_settings
from racetrack_core.settings import Settings, SettingsError


def test_defaults_derive_urls_and_the_database_from_the_home(tmp_path: Path) -> None:
    settings = Settings.load({"home": str(tmp_path)}, environ={})
    assert settings.home == tmp_path
    assert settings.database_url == f"sqlite:///{tmp_path / 'racetrack.db'}"
    assert settings.external_pub_url == "http://127.0.0.1:7105/pub"
    assert settings.external_lifecycle_url == "http://127.0.0.1:7102/lifecycle"
    assert settings.infrastructure_target == "local"


def test_the_home_comes_from_the_environment_when_not_given(tmp_path: Path) -> None:
    settings = Settings.load(environ={"RACETRACK_HOME": str(tmp_path / "h")})
    assert settings.home == tmp_path / "h"


def test_precedence_is_options_then_environment_then_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "pub_port: 9000\nlifecycle_port: 9001\ndashboard_port: 9002\n"
        "targets:\n  local:\n    drain_seconds: 2\n"
    )
    settings = Settings.load(
        {"home": str(tmp_path), "pub_port": 9100},
        environ={"RACETRACK_LIFECYCLE_PORT": "9101", "RACETRACK_AUTH_REQUIRED": "false"},
    )
    assert (settings.pub_port, settings.lifecycle_port, settings.dashboard_port) == (
        9100,
        9101,
        9002,
    )
    assert settings.auth_required is False
    assert settings.external_pub_url == "http://127.0.0.1:9100/pub"
    assert settings.targets == {"local": {"drain_seconds": 2}}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RACETRACK_PUB_PORT": "seven"}, "setting 'pub_port' in the environment must be a whole"),
        ({"RACETRACK_AUTH_REQUIRED": "maybe"}, "must be true or false"),
        ({"RACETRACK_JOB_LIVE_TIMEOUT": "soon"}, "must be a number"),
    ],
)
def test_bad_values_name_the_setting_and_where_it_came_from(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.load({"home": str(tmp_path)}, environ=environ)


def test_an_unknown_name_in_the_config_file_lists_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("pub_prot: 9000\n")
    with pytest.raises(SettingsError) as caught:
        Settings.load({"home": str(tmp_path)}, environ={})
    assert "unknown setting 'pub_prot'" in str(caught.value)
    assert "pub_port" in str(caught.value)


def test_pubs_settings_come_from_pubconfig_under_their_server_names(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("pub_auth_stale_ttl: 90\npub_async_max_attempts: 5\n")
    settings = Settings.load(
        {"home": str(tmp_path), "pub_upstream_timeout": 12},
        environ={
            "RACETRACK_PUB_AUTH_CACHE_TTL": "2.5",
            "RACETRACK_ASYNC_CALL_LIFETIME": "60",
            "RACETRACK_PUB_ASYNC_ADOPT_AFTER": "6",
            "RACETRACK_INTERNAL_TOKEN": "the-internal-token",
        },
    )
    pub = settings.pub
    assert (pub.auth_cache_ttl, pub.auth_stale_ttl, pub.upstream_timeout) == (2.5, 90.0, 12.0)
    assert (pub.async_call_lifetime, pub.async_max_attempts) == (60.0, 5)
    assert pub.async_adopt_after == 6.0
    assert pub.async_heartbeat_interval == 2.0  # a third of adopt_after, at most 10 s
    assert pub.lifecycle_url == settings.internal_lifecycle_url
    assert pub.internal_token == "the-internal-token"
    assert "the-internal-token" not in repr(settings)


def test_pubs_defaults_are_pubconfigs_own(tmp_path: Path) -> None:
    settings = Settings.load({"home": str(tmp_path)}, environ={})
    for name, setting in server_settings().items():
        assert getattr(settings.pub, setting.name) == getattr(PubConfig(), setting.name), name
    assert "pub_auth_cache_ttl" in server_settings()
    with pytest.raises(SettingsError, match="'pub_async_max_attempts' in the environment"):
        Settings.load({"home": str(tmp_path)}, environ={"RACETRACK_PUB_ASYNC_MAX_ATTEMPTS": "x"})


def test_the_admin_password_is_not_in_the_repr(tmp_path: Path) -> None:
    settings = Settings.load(
        {"home": str(tmp_path)}, environ={"RACETRACK_ADMIN_PASSWORD": "hunter2-but-longer"}
    )
    assert settings.admin_password == "hunter2-but-longer"
    assert "hunter2" not in repr(settings)
