"""Database URLs are shown without secrets; a postgres realm's manifest records the database, never a password."""

from __future__ import annotations

import json

import pytest

from meerkat.dburl import DatabaseIdentity, database_url, parse_database_url, redact_url, scrub_secrets
from meerkat.errors import InvalidParams, StoreError
from meerkat.realm_manifest import RealmManifest, read_manifest

SECRET = "s3cr%40t-pw"  # percent-encoded '@' in the password: the decoded form must not leak either


@pytest.mark.parametrize("url, shown", [
    (f"postgresql://bob:{SECRET}@db.example:6543/rkat?sslmode=require&password=other",
     "postgresql://bob@db.example:6543/rkat?sslmode=require"),
    ("postgres://db.example/rkat", "postgres://db.example/rkat"),
    (f"postgresql://bob:{SECRET}@h1:5432,h2:5433/rkat", "postgresql://bob@h1:5432,h2:5433/rkat"),
    (f"postgresql://:{SECRET}@[::1]:5000/d", "postgresql://[::1]:5000/d"),
    ("postgresql:///rkat?host=/run/postgresql&sslpassword=x", "postgresql:///rkat?host=%2Frun%2Fpostgresql"),
    (f"host=db password={SECRET}", "<not a postgresql:// URL>"),
])
def test_redacted_urls_keep_where_and_who_but_no_password(url, shown):
    assert redact_url(url) == shown
    assert "s3cr" not in redact_url(url) and "other" not in redact_url(url)


def test_identity_fills_libpq_defaults(monkeypatch):
    monkeypatch.setenv("PGUSER", "envuser")
    monkeypatch.setenv("PGPORT", "6000")
    monkeypatch.delenv("PGHOST", raising=False)
    monkeypatch.delenv("PGDATABASE", raising=False)
    assert parse_database_url("postgresql:///") == DatabaseIdentity("localhost", 6000, "envuser", "envuser")
    assert parse_database_url(f"postgresql://bob:{SECRET}@[::1]:5433/app") == DatabaseIdentity("::1", 5433, "app",
                                                                                                  "bob")
    assert parse_database_url("postgresql://h/app?user=carol&port=7") == DatabaseIdentity("h", 7, "app", "carol")


@pytest.mark.parametrize("url", [f"mysql://bob:{SECRET}@h/db", f"postgresql://bob:{SECRET}@h:port/db",
                                 f"postgresql://bob:{SECRET}@h/db?=&&="])
def test_a_malformed_url_is_invalid_params_without_the_password(url):
    with pytest.raises(InvalidParams) as caught:
        parse_database_url(url)
    assert "s3cr" not in caught.value.message
    assert "database URL" in caught.value.message


def test_flag_wins_over_environment(monkeypatch):
    monkeypatch.setenv("RKAT_DATABASE_URL", "postgresql://env/db")
    assert database_url("postgresql://flag/db") == "postgresql://flag/db"
    assert database_url(None) == "postgresql://env/db"
    monkeypatch.setenv("RKAT_DATABASE_URL", "")
    assert database_url(None) is None


def test_scrub_removes_the_url_and_both_spellings_of_the_password():
    url = f"postgresql://bob:{SECRET}@db/rkat"
    text = f"failed: {url} (password s3cr@t-pw, raw {SECRET})"
    scrubbed = scrub_secrets(text, url)
    assert "s3cr" not in scrubbed
    assert "postgresql://bob@db/rkat" in scrubbed


def test_postgres_manifest_round_trips_and_requires_its_database(tmp_path):
    identity = DatabaseIdentity("db.example", 5432, "rkat", "bob", "0190-id")
    manifest = RealmManifest("team", "postgres", "explicit", "1700000000", identity)
    path = tmp_path / "realm_manifest.json"
    path.write_text(json.dumps(manifest.to_dict()))
    assert read_manifest(path) == manifest
    assert json.loads(path.read_text())["database"] == {"host": "db.example", "port": 5432, "dbname": "rkat",
                                                        "user": "bob", "database_id": "0190-id"}
    path.write_text(json.dumps({**manifest.to_dict(), "database": None}))
    with pytest.raises(StoreError, match="corrupt realm manifest .*'database' is not a JSON object"):
        read_manifest(path)
    sqlite = RealmManifest("team", "sqlite", "explicit", "1700000000")
    assert "database" not in sqlite.to_dict()


@pytest.mark.parametrize("url", [
    "postgresql://bob:s3cr/et@db.example:5432/rkat",      # looks like host bob, port 's3cr'
    "postgresql://bob:1234/s3cret@db.example/rkat",       # numeric start: host bob, port 1234, db 's3cret@...'
    "postgresql://bob:s3cr?et@db.example/rkat",           # the query string starts inside the password
    "postgresql://bob:s3cr?x=et@db.example/rkat",         # ... and looks like a parameter
    "postgresql://bob:s3#cr/et@db.example/rkat",
])
def test_an_unencoded_slash_question_mark_or_hash_in_the_password_never_shows_it(url):
    # A generated password (base64 has '/') pasted unencoded splits the URL where libpq
    # splits it too: what looks like host, port or database is the user and password.
    assert "s3cr" not in redact_url(url)
    with pytest.raises(InvalidParams) as caught:
        parse_database_url(url)
    assert "s3cr" not in caught.value.message and "percent-encode" in caught.value.message


@pytest.mark.parametrize("url, shown", [
    ("postgresql://h/db?user=ann@corp", "postgresql://h/db?user=ann%40corp"),
    ("postgresql://h1:5432,h2:5433/db", "postgresql://h1:5432,h2:5433/db"),
    ("postgresql://[::1]:5432/db", "postgresql://[::1]:5432/db"),
])
def test_urls_without_userinfo_still_show_where_they_point(url, shown):
    assert redact_url(url) == shown
    parse_database_url(url)
