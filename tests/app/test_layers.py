"""The layering the code is built to, checked on its imports: python-socketio and python-engineio are
reached only through app/transport, and handlers are imported by nothing in app/ but the composition
root (app/factory.py), so the core never depends on what it serves."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["app", "handlers", "engines", "schemas"]


def imports(path: Path) -> set[str]:
    """The top-level packages a module imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), str(path))
    package = path.relative_to(ROOT).parent.parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                found.add(base[0] if base else (node.module or "").split(".")[0])
            elif node.module:
                found.add(node.module.split(".")[0])
    return found


MODULES = sorted(p for name in PACKAGES for p in (ROOT / name).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_layers(path: Path) -> None:
    relative = path.relative_to(ROOT)
    found = imports(path)
    if relative.parts[:2] != ("app", "transport"):
        assert not found & {"socketio", "engineio"}, f"{relative} imports {found & {'socketio', 'engineio'}}: " \
            "only app/transport may touch python-socketio and python-engineio"
    if relative.parts[0] == "app" and relative != Path("app/factory.py"):
        assert "handlers" not in found, f"{relative} imports handlers: only app/factory.py may"


def test_the_check_sees_imports() -> None:
    """The checker itself finds both kinds of edge (so the test above cannot pass vacuously)."""
    assert "handlers" in imports(ROOT / "app" / "factory.py")
    assert "socketio" in imports(ROOT / "app" / "transport" / "server.py")
    assert {"app", "schemas"} <= imports(ROOT / "handlers" / "chat.py")
