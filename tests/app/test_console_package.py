"""The console's files ship in the package: every file under app/console/static matches setup.cfg's
package_data, so a non-editable install serves the same page."""
from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_console_file_is_package_data() -> None:
    """Each static file (page, styles, modules, vendored client) is named by a package_data pattern."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in config["options.package_data"]["app.console"].split(",")]
    base = ROOT / "app" / "console"
    files = [p.relative_to(base) for p in (base / "static").rglob("*") if p.is_file()]
    assert files and all(any(f.match(pattern) and len(f.parts) == len(Path(pattern).parts) for pattern in patterns)
                         for f in files), [str(f) for f in files]
