"""Settings come from the environment once, and bad ones stop start-up with one line."""
from __future__ import annotations

from pathlib import Path

import pytest

from app import settings as settings_module
from app.settings import SettingsError, from_env

SECRET = "s" * 32


def test_defaults_match_the_documents() -> None:
    """With only a secret, limits are the documented ones: 1000 connections, 64 KB, 30 s, 5 min."""
    s = from_env({"JWT_SECRET": SECRET})
    assert (s.host, s.port, s.max_connections, s.max_message_bytes) == ("127.0.0.1", 8000, 1000, 65536)
    assert (s.heartbeat, s.idle_timeout, s.jwt_algorithms) == (30.0, 300.0, ("HS256",))


def test_environment_overrides() -> None:
    """Variables are parsed into typed values, lists split on commas."""
    s = from_env({"JWT_SECRET": SECRET, "PORT": "9000", "ALLOWED_ORIGINS": "https://a.example, https://b.example",
                  "MAX_CONNECTIONS": "5"})
    assert s.port == 9000 and s.max_connections == 5
    assert s.allowed_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize("env,fragment", [
    ({"JWT_SECRET": SECRET, "PORT": "abc"}, "PORT"),
    ({"JWT_SECRET": SECRET, "MAX_CONNECTIONS": "0"}, "MAX_CONNECTIONS"),
    ({"JWT_SECRET": "short"}, "JWT_SECRET"),
    ({"JWT_SECRET": SECRET, "JWT_ALGORITHMS": "none"}, "JWT_ALGORITHMS"),
    ({"JWT_ALGORITHMS": "RS256", "JWT_SECRET": SECRET}, "JWT_PUBLIC_KEY"),
    ({"DYNO": "web.1"}, "JWT_SECRET"),
])
def test_bad_settings_give_one_clear_line(env: dict[str, str], fragment: str) -> None:
    """Each invalid or missing setting raises SettingsError naming it, on one line."""
    with pytest.raises(SettingsError) as caught:
        from_env(env)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_development_secret_is_generated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without JWT_SECRET a development secret is generated, kept private and reused."""
    monkeypatch.setattr(settings_module, "DEV_SECRET_FILE", tmp_path / ".ponte" / "secret")
    first, second = from_env({}), from_env({})
    assert first.jwt_secret and first.jwt_secret == second.jwt_secret
    assert (tmp_path / ".ponte" / "secret").stat().st_mode & 0o077 == 0
