"""Database URLs read without SQLAlchemy (settings load on every command, even `--help`):
whether a URL is PostgreSQL, which database it names, its libpq form, and how to show
it without its password."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

from .errors import UsageError

# The one PostgreSQL driver the fleet installs (the `postgres` and `fleet` extras).
DRIVER_SCHEME = "postgresql+psycopg"
_POSTGRES_SCHEMES = {"postgresql", "postgres", DRIVER_SCHEME}
DEFAULT_PORT = 5432


def hide_password(url: str) -> str:
    """``url`` with its password as ``***`` (as SQLAlchemy shows a URL), to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def postgres_url(url: str, *, name: str) -> str:
    """``url`` as the SQLAlchemy URL of a PostgreSQL database through psycopg 3
    (``postgresql://`` and ``postgres://`` gain ``+psycopg``); anything else is a usage
    error naming the setting ``name`` that gave it (its password hidden)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _POSTGRES_SCHEMES:
        raise UsageError(
            f"{name} must be a PostgreSQL URL such as "
            f"{DRIVER_SCHEME}://fleet@db.example.org/fleet, not {hide_password(url)!r}"
        )
    if not (parts.path.strip("/") or _query(parts.query).get("dbname")):
        raise UsageError(f"{name} names no database: {hide_password(url)!r}")
    return urlunsplit(parts._replace(scheme=DRIVER_SCHEME))


def libpq_conninfo(url: str) -> str:
    """The libpq connection URI of a PostgreSQL SQLAlchemy URL (psycopg and Procrastinate
    connect with it): the same URL, with the scheme libpq knows."""
    parts = urlsplit(url)
    if parts.scheme not in _POSTGRES_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL: {hide_password(url)!r}")
    return urlunsplit(parts._replace(scheme="postgresql"))


@dataclass(frozen=True)
class Database:
    """What makes two PostgreSQL URLs the same database for the fleet: the server, the
    database, and the options (a ``search_path`` there puts the tables in a schema).
    The user and password may differ: they do not change where tables are."""

    host: str  # "" is the local socket
    port: int
    dbname: str
    options: str


def database_of(url: str) -> Database:
    parts = urlsplit(url)
    query = _query(parts.query)
    host = (parts.hostname or query.get("host", "")).lower()
    if host == "localhost":
        host = "127.0.0.1"
    port = parts.port or int(query.get("port") or DEFAULT_PORT)
    dbname = parts.path.strip("/") or query.get("dbname", "")
    return Database(host, port, dbname, query.get("options", ""))


def _query(query: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(query).items()}
