"""What Heroku's Python buildpack reads: requirements.txt, .python-version and the Procfile."""
from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "regenerate requirements.txt with the command in its header"
# What pip prints when it cannot reach the package index at all (rather than finding no such version).
NETWORK_ERRORS = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                  "Network is unreachable", "ConnectTimeoutError", "ProxyError")
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".*_cache",
                                    ".hypothesis", ".ponte")


def setup_cfg() -> configparser.ConfigParser:
    """setup.cfg, as setuptools reads it."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def install_requires() -> list[Requirement]:
    """setup.cfg's install_requires, comments dropped."""
    lines = (line.split("#", 1)[0].strip() for line in setup_cfg()["options"]["install_requires"].splitlines())
    return [Requirement(line) for line in lines if line]


def pins() -> dict[str, str]:
    """requirements.txt's pins as {canonical name: version}; its only other line installs the project itself."""
    found: dict[str, str] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text in ("", "."):
            continue
        requirement = Requirement(text)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"requirements.txt: {text!r} is not pinned to one version"
        found[canonicalize_name(requirement.name)] = spec.version
    return found


def test_requirements_satisfy_every_range_in_setup_cfg() -> None:
    """Every install_requires range of setup.cfg is met by a version pinned in requirements.txt."""
    pinned, drift = pins(), []
    for requirement in install_requires():
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            drift.append(f"{requirement} (requirements.txt pins {version or 'nothing'})")
    assert not drift, f"setup.cfg asks for {', '.join(drift)}: {REGENERATE}"


def test_requirements_install_the_project_itself() -> None:
    """requirements.txt installs Ponte itself (the line "."), so the buildpack needs nothing else."""
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert lines.count(".") == 1


def test_python_version_is_the_minor_setup_cfg_allows() -> None:
    """.python-version names one minor release, allowed by python_requires and the one mypy checks for."""
    pinned = (ROOT / ".python-version").read_text().strip()
    config = setup_cfg()
    assert re.fullmatch(r"3\.\d+", pinned), f".python-version should name a minor release such as 3.11: {pinned!r}"
    assert SpecifierSet(config["options"]["python_requires"]).contains(pinned)
    assert config["mypy"]["python_version"] == pinned


def test_procfile_lines_are_the_ones_readme_shows() -> None:
    """The Procfile declares the release phase (migrations), the web process and the workers, with the very lines
    README's "Deploying" shows."""
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    assert [line.split(":", 1)[0] for line in lines] == ["release", "web", "worker"]
    assert lines[0] == "release: python -m app migrate"
    readme = (ROOT / "README.md").read_text()
    deploying = readme.split("\n## Deploying\n", 1)[1].split("\n## ", 1)[0]
    for line in lines:
        assert line in deploying.splitlines(), f"README's Deploying section should show {line!r}"


@pytest.mark.timeout(600)
def test_fresh_virtualenv_installs_requirements_and_runs(tmp_path: Path) -> None:
    """`pip install -r requirements.txt` in a fresh virtualenv, as the buildpack does, installs exactly the
    pinned set, and from there `python -m app --help` runs and every package imports."""
    source, venv = tmp_path / "source", tmp_path / "venv"
    shutil.copytree(ROOT, source, ignore=NOT_COPIED)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    installed = run([python, "-m", "pip", "install", "-r", "requirements.txt"], source, env, 480)
    if installed.returncode != 0:
        no_network = any(marker in installed.stdout for marker in NETWORK_ERRORS)
        if no_network and os.environ.get("CI") != "true":
            pytest.skip("no network: pip could not reach the package index to install requirements.txt")
        pytest.fail(f"pip install -r requirements.txt failed:\n{installed.stdout[-4000:]}")
    # Run from outside the source tree: what imports comes from the virtualenv.
    helped = run([python, "-m", "app", "--help"], tmp_path, env, 60)
    assert helped.returncode == 0 and "usage: python -m app" in helped.stdout, helped.stdout
    imported = run([python, "-c", "import app, handlers, schemas, engines; print(engines.__file__)"], tmp_path, env, 60)
    assert imported.returncode == 0 and str(venv) in imported.stdout, imported.stdout
    frozen = run([python, "-m", "pip", "freeze", "--exclude", "ponte"], tmp_path, env, 60).stdout
    got = {canonicalize_name(name): version for name, version in re.findall(r"^([^=\s]+)==(\S+)$", frozen, re.M)}
    pinned = pins()
    unpinned = sorted(f"{name}=={version}" for name, version in got.items() if pinned.get(name) != version)
    missing = sorted(f"{name}=={version}" for name, version in pinned.items() if got.get(name) != version)
    problems = f"installed, not pinned: {unpinned}; pinned, not installed: {missing}"
    assert not unpinned and not missing, f"{problems}: {REGENERATE}"
    assert run([python, "-m", "pip", "check"], tmp_path, env, 60).returncode == 0


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a command to its end; stdout and stderr together in `stdout`."""
    return subprocess.run(command, cwd=cwd, env=env, timeout=timeout, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
