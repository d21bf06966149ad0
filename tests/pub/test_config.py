"""Pub's settings from the environment."""

from __future__ import annotations

import pytest

from racetrack_core.pub import PubConfig


def test_settings_come_from_pub_variables_then_defaults() -> None:
    config = PubConfig.from_env(
        {"PUB_LIFECYCLE_URL": "http://127.0.0.1:9", "PUB_AUTH_CACHE_TTL": "2.5"}
    )

    assert config.lifecycle_url == "http://127.0.0.1:9"
    assert config.auth_cache_ttl == 2.5
    assert config.auth_stale_ttl == PubConfig().auth_stale_ttl


def test_a_malformed_setting_names_its_variable() -> None:
    with pytest.raises(ValueError, match="PUB_UPSTREAM_TIMEOUT='soon' is not a valid float"):
        PubConfig.from_env({"PUB_UPSTREAM_TIMEOUT": "soon"})
