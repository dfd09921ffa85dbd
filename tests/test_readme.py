"""The README is true: its commands and Python examples run against a real `python -m app`."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SECRET = "readme-secret-0123456789abcdef-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, str]]:
    """`python -m app` running as a user would run it; yields the environment for clients."""
    port = free_port()
    env = {**os.environ, "JWT_SECRET": SECRET, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends when the process does
            if "Running on" in line:
                break
        assert proc.poll() is None, "server exited at start-up"
        token = subprocess.run([sys.executable, "-m", "app", "token", "--sub", "readme"], cwd=ROOT, env=env,
                               check=True, capture_output=True, text=True, timeout=30).stdout.strip()
        yield {**env, "PONTE_URL": f"http://127.0.0.1:{port}", "TOKEN": token}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_the_two_commands_first() -> None:
    """The first two shell blocks install and run the server, then install and run the tests."""
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    assert blocks[0].strip().endswith("python -m app")
    assert "pytest" in blocks[1] and ".[test]" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in ci, ".ci/run must take its test command from the README"


@pytest.mark.parametrize("index", range(len(python_examples())))
def test_python_example_runs(served: dict[str, str], index: int) -> None:
    """Each Python example in the README runs to completion against the server."""
    result = subprocess.run([sys.executable, "-c", python_examples()[index]], env=served, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_token_commands_run(served: dict[str, str]) -> None:
    """The README's token commands print tokens."""
    for line in re.findall(r"^\.venv/bin/python -m app token [^#\n]*", README, flags=re.M):
        args = line.split()[3:]
        out = subprocess.run([sys.executable, "-m", "app", *args], env=served, capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0 and out.stdout.count(".") == 2, out.stderr
