"""The README is true: its commands and Python examples run against a real `python -m app`."""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import aiohttp
import pytest

from conftest import RedisProcess, free_port, make_token
from tests.fixtures.blog import BlogSite

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SECRET = "readme-secret-0123456789abcdef-0123456789"
NO_REDIS = "redis-server is not installed: install it (apt-get install redis-server) to run the Redis examples"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str | None]:
    """A private redis-server for the served app; None outside CI when there is none (its examples skip)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required under CI (.ci/run installs it)")
        yield None
        return
    redis = RedisProcess(free_port())
    redis.start()
    try:
        yield redis.url
    finally:
        redis.stop()


def wait_ready(url: str, timeout: float = 10.0) -> None:
    """Poll /readyz until it answers 200 (with Redis: subscribed, so external emitters are heard)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def app_token(env: dict[str, str], *args: str) -> str:
    """A token printed by `python -m app token ARGS`."""
    return subprocess.run([sys.executable, "-m", "app", "token", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=30).stdout.strip()


@pytest.fixture(scope="module")
def blog_url() -> Iterator[str]:
    """The fixture blog, served from a thread of its own for the whole module (the execution example crawls it)."""
    loop = asyncio.new_event_loop()
    site = BlogSite()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(site.__aenter__(), loop).result(10)
    try:
        yield site.url
    finally:
        asyncio.run_coroutine_threadsafe(site.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture(scope="module")
def served(redis_url: str | None, blog_url: str) -> Iterator[dict[str, str]]:
    """`python -m app` running as a user would run it, with Redis when there is one; yields the
    environment for clients (PONTE_URL, TOKEN, PUBLISH_TOKEN and REDIS_URL when there is Redis)."""
    port = free_port()
    env = {**os.environ, "JWT_SECRET": SECRET, "PORT": str(port), "PYTHONUNBUFFERED": "1",
           "ALLOW_PRIVATE_URLS": "true", "BLOG_URL": blog_url}  # the blog to crawl is on 127.0.0.1
    env.pop("REDIS_URL", None)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    # With Redis, jobs run on workers, as "Jobs and workers" shows: one `python -m app worker` beside it.
    worker = (subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) if redis_url is not None else None)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends when the process does
            if "Running on" in line:
                break
        assert proc.poll() is None, "server exited at start-up"
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        yield {**env, "PONTE_URL": url, "TOKEN": app_token(env, "--sub", "readme"),
               "PUBLISH_TOKEN": app_token(env, "--sub", "backend", "--scope", "publish")}
    finally:
        for process in (proc, worker):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


def python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def publishing_examples() -> list[str]:
    """The examples that publish a NOTIFICACAO_GERAL to alice (the HTTP API, the Redis emitter)."""
    return [example for example in python_examples() if "NOTIFICACAO_GERAL" in example]


def needs(example: str, served: dict[str, str]) -> None:
    """Skip an example that uses REDIS_URL when the server runs without Redis."""
    if "REDIS_URL" in example and "REDIS_URL" not in served:
        pytest.skip(NO_REDIS)


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
    needs(python_examples()[index], served)
    result = subprocess.run([sys.executable, "-c", python_examples()[index]], env=served, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    example = python_examples()[index]
    if "Investigate contracts of the Ministry of Health" in example:  # First steps: crawl, ask in English, report
        for expected in ("cluster: ", "EXECUCAO_CONCLUIDA", "Zumbi dos Palmares: ", "synthetic", "anomaly: ",
                         "## Anomalies"):
            assert expected in result.stdout, (expected, result.stdout)
        return
    if "EXECUCAO_INICIAR" in example:  # the execution example crawls the fixture blog to the end
        assert "EXECUCAO_CONCLUIDA" in result.stdout and "posicao,termo,frequencia" in result.stdout, result.stdout
        assert "cluster café" in result.stdout or "cluster solar" in result.stdout, result.stdout
    if "report_ready" in example:  # the walkthrough: agents answer, anomalies stream, report read
        for expected in ("Zumbi dos Palmares: Iniciei", "anomalia: ", "Anita Garibaldi:", "Tiradentes:",
                         "## Anomalias"):
            assert expected in result.stdout, (expected, result.stdout)
    if "text/csv" in python_examples()[index]:  # the upload finds the overpriced notebook
        assert "INV-" in result.stdout and "19000" in result.stdout, result.stdout


@pytest.mark.parametrize("index", range(len(publishing_examples())))
async def test_publishing_example_delivers(served: dict[str, str], index: int) -> None:
    """Each publishing example's notification reaches a raw client of alice's connected to the server."""
    example = publishing_examples()[index]
    needs(example, served)
    headers = {"Authorization": f"Bearer {make_token('alice', key=SECRET)}"}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{served['PONTE_URL']}/ws", headers=headers) as ws:
            assert (await ws.receive_json(timeout=10))["event"] == "SESSAO_CONECTADA"
            await ws.send_json({"event": "SESSAO_PING", "data": {"request_id": "ready"}})
            assert (await ws.receive_json(timeout=10))["event"] == "SESSAO_PONG"
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", example, env=served,
                                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            message = await ws.receive_json(timeout=10)
            assert message["event"] == "NOTIFICACAO_GERAL" and message["data"]["tipo"], message


def test_token_commands_run(served: dict[str, str]) -> None:
    """The README's token commands print tokens."""
    for line in re.findall(r"^\.venv/bin/python -m app token [^#\n]*", README, flags=re.M):
        args = line.split()[3:]
        out = subprocess.run([sys.executable, "-m", "app", *args], env=served, capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0 and out.stdout.count(".") == 2, out.stderr
