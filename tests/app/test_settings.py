"""Settings come from the environment once, and bad ones stop start-up with one line."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from app.settings import SettingsError, from_env, ponte_home

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
    ({"JWT_SECRET": SECRET, "LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
])
def test_bad_settings_give_one_clear_line(env: dict[str, str], fragment: str) -> None:
    """Each invalid or missing setting raises SettingsError naming it, on one line."""
    with pytest.raises(SettingsError) as caught:
        from_env(env)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_development_secret_is_generated_once(tmp_path: Path) -> None:
    """Without JWT_SECRET a development secret is generated in PONTE_HOME, kept private (0600) and reused."""
    first, second = from_env({"PONTE_HOME": str(tmp_path)}), from_env({"PONTE_HOME": str(tmp_path)})
    assert first.jwt_secret and first.jwt_secret == second.jwt_secret
    assert first.dev_secret_path == str(tmp_path / "dev-jwt-secret")
    assert (tmp_path / "dev-jwt-secret").stat().st_mode & 0o777 == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["dev-jwt-secret"]  # nothing left beside it


def test_instances_started_at_once_share_one_development_secret(tmp_path: Path) -> None:
    """16 starts at the same moment on a new PONTE_HOME (two instances and a token command, say), 20 times
    over: each reads the whole secret, the same one; none finds it half written."""
    for n in range(20):
        home, start, found = tmp_path / f"home{n}", threading.Barrier(16), []

        def read() -> None:
            start.wait()
            try:
                found.append(from_env({"PONTE_HOME": str(home)}).jwt_secret)
            except SettingsError as exc:
                found.append(exc)

        threads = [threading.Thread(target=read) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        secret: Any = (home / "dev-jwt-secret").read_text().strip()
        assert found == [secret] * 16, found


@pytest.mark.parametrize("env,home", [
    ({"PONTE_HOME": "/p", "XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/p"),
    ({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/ponte"),
    ({"XDG_CONFIG_HOME": "relative", "HOME": "/h"}, "/h/.config/ponte"),
    ({"HOME": "/h"}, "/h/.config/ponte"),
])
def test_development_secret_home_ignores_the_working_directory(env: dict[str, str], home: str) -> None:
    """The development secret's directory is PONTE_HOME, else $XDG_CONFIG_HOME/ponte, else ~/.config/ponte."""
    assert ponte_home(env) == Path(home)
