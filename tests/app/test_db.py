"""The database's configuration and the listing's cursors, with no server: pure functions."""
from __future__ import annotations

import pytest

from app.db.engine import asyncpg_args, engine_for, normalise, safe_url
from app.db.listing import BadCursor, decode_cursor, encode_cursor
from app.settings import SettingsError, from_env

SECRET = {"JWT_SECRET": "x" * 32}


@pytest.mark.parametrize("given, driver", [
    ("postgres://u:p@db.example:5432/ponte", "postgresql+asyncpg"),
    ("postgresql://u:p@db.example/ponte", "postgresql+asyncpg"),
    ("postgresql+asyncpg://u:p@db.example/ponte", "postgresql+asyncpg"),
    ("sqlite:////var/lib/ponte.sqlite3", "sqlite+aiosqlite"),
    ("sqlite+aiosqlite:///relative.sqlite3", "sqlite+aiosqlite"),
])
def test_urls_get_an_async_driver(given: str, driver: str) -> None:
    """Heroku's postgres:// and plain postgresql:// and sqlite:// URLs are driven by asyncpg and aiosqlite."""
    assert normalise(given).drivername == driver


def test_sslmode_becomes_asyncpgs_ssl() -> None:
    """libpq's ?sslmode=require (what Heroku Postgres needs) is handed to asyncpg as ssl, not left in the URL
    as a keyword argument asyncpg would refuse; other query parameters stay."""
    url, args = asyncpg_args(normalise("postgres://u:secret@db.example/ponte?sslmode=require&application_name=p"))
    assert args["ssl"] == "require" and "sslmode" not in url.query and url.query["application_name"] == "p"
    assert "ssl" not in asyncpg_args(normalise("postgres://u@db.example/ponte"))[1]
    engine_for("postgres://u:secret@db.example/ponte?sslmode=require")  # builds, connecting to nothing yet


def test_logged_urls_hide_the_password() -> None:
    """What Ponte may log of a DATABASE_URL never has its password."""
    assert "secret" not in safe_url("postgres://user:secret@db.example:5432/ponte")
    assert "user" in safe_url("postgres://user:secret@db.example:5432/ponte")


def test_database_url_defaults_to_sqlite_in_ponte_home(tmp_path: object) -> None:
    """No DATABASE_URL: SQLite in PONTE_HOME/ponte.sqlite3; DATABASE_URL wins when set."""
    assert from_env({**SECRET, "PONTE_HOME": "/srv/ponte"}).database_url == "sqlite:////srv/ponte/ponte.sqlite3"
    chosen = from_env({**SECRET, "DATABASE_URL": "postgres://u@h/db"})
    assert chosen.database_url == "postgres://u@h/db"


def test_on_heroku_postgres_is_reached_over_tls() -> None:
    """On a dyno (DYNO set) a postgres URL without sslmode gets sslmode=require; one that says otherwise keeps it."""
    heroku = {**SECRET, "DYNO": "web.1"}
    assert from_env({**heroku, "DATABASE_URL": "postgres://u@h/db"}).database_url.endswith("?sslmode=require")
    said = "postgres://u@h/db?sslmode=verify-full"
    assert from_env({**heroku, "DATABASE_URL": said}).database_url == said


def test_other_database_urls_are_refused_in_one_line() -> None:
    """A DATABASE_URL Ponte cannot use stops start-up with one line naming it, never quoting it."""
    with pytest.raises(SettingsError) as caught:
        from_env({**SECRET, "DATABASE_URL": "mysql://u:hunter2@h/db"})
    assert "DATABASE_URL" in str(caught.value) and "hunter2" not in str(caught.value)


def test_cursors_round_trip_and_refuse_forgeries() -> None:
    """A cursor gives back the (created_at, id) it was made of; anything else is a BadCursor."""
    assert decode_cursor(encode_cursor(1764421234.123456, "exec_abc")) == (1764421234.123456, "exec_abc")
    for bad in ("", "not-base64!", "bnVsbA", encode_cursor(1.0, "x")[:-3]):
        with pytest.raises(BadCursor):
            decode_cursor(bad)
