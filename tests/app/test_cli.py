"""The command line as an operator meets it: --help documents every setting as the README does, and a
server that cannot start says why in one line on stderr and exits with 2."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from conftest import SECRET, TIMEOUT, make_token, served_app

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def run_app(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m app ARGS` with a known secret plus `env`, to completion."""
    environ = {**os.environ, "JWT_SECRET": SECRET, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=60)


def help_settings(text: str) -> dict[str, str]:
    """{VARIABLE: default} as `--help` lists them."""
    return dict(re.findall(r"^  ([A-Z][A-Z0-9_]+) \(default: (.*)\)$", text, flags=re.M))


def readme_settings() -> dict[str, str]:
    """{VARIABLE: default} from the README's Configuration table (`—` is written `unset` in --help)."""
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    found: dict[str, str] = {}
    for row in re.findall(r"^\| (`[A-Z].*)$", table, flags=re.M):
        names_cell, default_cell = [cell.strip() for cell in row.split(" | ")[:2]]
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", names_cell)
        defaults = default_cell.split(", ") if len(names) > 1 and ", " in default_cell else [default_cell] * len(names)
        assert len(defaults) == len(names), row
        for name, default in zip(names, defaults):
            found[name] = "unset" if default == "—" else default.replace("`", "")
    return found


@pytest.mark.parametrize("command", [["--help"], ["serve", "--help"]])
def test_help_lists_every_setting_with_its_default(command: list[str]) -> None:
    """`--help` and `serve --help` name every setting, with a default and a meaning, and exit 0."""
    result = run_app(*command)
    listed = help_settings(result.stdout)
    assert result.returncode == 0 and result.stderr == ""
    assert {"PORT", "JWT_SECRET", "LOG_LEVEL", "ALLOW_PRIVATE_URLS", "PONTE_HOME"} <= set(listed)
    assert listed["PORT"] == "8000" and listed["ALLOW_PRIVATE_URLS"] == "false" and listed["RECORDS_TTL"] == "604800"
    assert "DEV_SECRET_PATH" not in listed  # set by the program, not by the environment
    assert "where the development JWT secret lives" in result.stdout


def test_readme_configuration_table_matches_help() -> None:
    """Every variable of the README's Configuration table is in --help with the same default, and vice versa."""
    assert readme_settings() == help_settings(run_app("--help").stdout)


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed start, checked: exit code 2, no traceback anywhere."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ponte: "), result.stderr
    return lines[0]


def test_port_in_use_is_one_line() -> None:
    """A port already in use stops start-up with one line naming the address and what to do."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_failure(run_app(HOST="127.0.0.1", PORT=str(port)))
    assert f"127.0.0.1:{port}" in line and "address already in use" in line and "PORT" in line


@pytest.mark.parametrize("env,names", [
    ({"LOG_LEVEL": "verbose"}, ("LOG_LEVEL", "DEBUG, INFO, WARNING, ERROR, CRITICAL")),
    ({"PORT": "eighty"}, ("PORT",)),
    ({"MAX_CONNECTIONS": "0"}, ("MAX_CONNECTIONS",)),
    ({"JWT_ALGORITHMS": "RS256", "JWT_PUBLIC_KEY": "not a key"}, ("JWT_PUBLIC_KEY", "RS256")),
    ({"JWT_SECRET": "", "DYNO": "web.1"}, ("JWT_SECRET", "production")),
])
def test_invalid_settings_are_one_line(env: dict[str, str], names: tuple[str, ...]) -> None:
    """An invalid setting stops start-up with one line naming it, before anything listens."""
    line = one_line_failure(run_app(**env))
    assert all(name in line for name in names), line


def test_unusable_development_secret_is_one_line(tmp_path: Path) -> None:
    """A PONTE_HOME where the development secret cannot be kept (a file, not a directory) is one line naming it."""
    (tmp_path / "not-a-directory").write_text("")
    line = one_line_failure(run_app(JWT_SECRET="", PONTE_HOME=str(tmp_path / "not-a-directory")))
    assert "not-a-directory" in line and "JWT_SECRET" in line


def test_short_development_secret_is_one_line(tmp_path: Path) -> None:
    """A development secret file cut short says how to get a new one, without printing what it holds."""
    (tmp_path / "dev-jwt-secret").write_text("abc")
    line = one_line_failure(run_app("token", "--sub", "alice", JWT_SECRET="", PONTE_HOME=str(tmp_path)))
    assert str(tmp_path / "dev-jwt-secret") in line and "delete it" in line and "abc" not in line


@pytest.mark.parametrize("choice,loop", [("auto", "uvloop"), ("asyncio", "asyncio")])
async def test_event_loop_setting(tmp_path: Path, choice: str, loop: str) -> None:
    """EVENT_LOOP=auto serves on uvloop (a dependency wherever it builds), asyncio when asked; the start-up
    line names it, and a client is served on either."""
    async with served_app(tmp_path, EVENT_LOOP=choice) as app, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{app.base}/ws?token={make_token('alice')}") as ws:
            assert (await ws.receive_json(timeout=TIMEOUT))["event"] == "SESSAO_CONECTADA"
            await ws.send_json({"event": "SESSAO_PING", "data": {"request_id": "r1"}})
            pong = await ws.receive_json(timeout=TIMEOUT)
    assert pong["event"] == "SESSAO_PONG", pong
    assert f"(event loop: {loop})" in app.output, app.output
