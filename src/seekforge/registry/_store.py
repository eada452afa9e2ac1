"""The registry's tables and operations (SQLAlchemy Core, so that a SQLite file and a PostgreSQL server
hold the same thing)."""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from seekforge.core.deps import require
from seekforge.core.errors import ConfigError, PackageError, SeekforgeError
from seekforge.core.io import sha256_file
from seekforge.core.package import read_manifest

#: Where the registry is when neither --registry nor SEEKFORGE_REGISTRY says.
DEFAULT = "runs/registry.db"


def location(where: str | Path | None) -> str | Path:
    """The registry to use: ``where`` when given, else ``$SEEKFORGE_REGISTRY``, else :data:`DEFAULT`."""
    return where or os.environ.get("SEEKFORGE_REGISTRY") or DEFAULT


class RegistryUnavailable(SeekforgeError, ConnectionError):
    """The registry's database cannot be opened or is locked by another writer."""


@dataclass(frozen=True)
class Version:
    """One registered version of a model."""

    name: str
    version: int
    package: str
    sha256: str
    model_version: str
    metrics: dict[str, Any]
    gates: dict[str, Any]
    lineage: dict[str, Any]
    created_at: str
    created_by: str
    aliases: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Every gate the package records passed."""
        return all(gate.get("passed", True) for gate in self.gates.values())

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "aliases": list(self.aliases), "passed": self.passed}


def _url(where: str | Path) -> str:
    text = str(where)
    return text if "://" in text else f"sqlite:///{Path(text).resolve()}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a container without a passwd entry
        return os.environ.get("USER", "unknown")


def gates_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The gates a package records: seekforge pipeline's, the fairness gate, and the fp32 ONNX export's
    parity gate (a reduced-precision variant that failed its gate is one the server never picks, which is
    the hardware's verdict, not the model's)."""
    gates: dict[str, Any] = dict(manifest.get("gates") or {})  # seekforge pipeline's, when it made the package
    fairness = (manifest.get("fairness") or {}).get("gate")
    if fairness is not None:
        gates["fairness"] = {"passed": fairness["passed"], "reasons": fairness["reasons"]}
    export = manifest.get("exports", {}).get("onnx")
    if export is not None:
        gates["parity:onnx"] = {"passed": bool((export.get("parity") or {}).get("passed", False))}
    return gates


class Registry:
    """A registry at ``where``: a SQLite file path or an SQLAlchemy URL (``postgresql+psycopg://...``).

    Raises:
        RegistryUnavailable: The database cannot be opened.
    """

    def __init__(self, where: str | Path = DEFAULT, *, read_only: bool = False) -> None:
        """With ``read_only``, nothing is ever written: a SQLite file is opened in SQLite's read-only mode (it
        must exist; in WAL mode, which the registry sets, a reader never holds a writer up), a PostgreSQL one
        in read-only transactions, the tables are not created, and every write is refused."""
        sa = require("sqlalchemy", purpose="The model registry")
        self.url = _url(where)
        self.read_only = read_only
        parsed = sa.engine.make_url(self.url) if "://" in str(where) else None
        sqlite = parsed is None or parsed.get_backend_name() == "sqlite"
        file = Path(where) if parsed is None else Path(parsed.database) if sqlite and parsed.database not in (
            None, "", ":memory:") else None  # fmt: skip
        options: dict[str, Any] = {}
        if file is not None:  # opened as it is named ('?', '#', '%' and all), not read back from a URL
            path = file.resolve()
            if not read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            target, uri = (f"file:{quote(str(path))}?mode=ro", True) if read_only else (str(path), False)
            options["creator"] = lambda: sqlite3.connect(target, uri=uri, timeout=10, check_same_thread=False)
            options["poolclass"] = sa.pool.QueuePool
        elif read_only and parsed is not None and parsed.get_backend_name() == "postgresql":
            options["execution_options"] = {"postgresql_readonly": True}
        self._sa = sa
        meta = sa.MetaData()
        self.versions = sa.Table(
            "versions", meta,
            sa.Column("name", sa.String(100), primary_key=True),
            sa.Column("version", sa.Integer, primary_key=True),
            sa.Column("package", sa.Text, nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("model_version", sa.String(200), nullable=False),
            sa.Column("metrics", sa.Text, nullable=False),
            sa.Column("gates", sa.Text, nullable=False),
            sa.Column("lineage", sa.Text, nullable=False),
            sa.Column("created_at", sa.String(40), nullable=False),
            sa.Column("created_by", sa.String(200), nullable=False),
        )  # fmt: skip
        self.aliases = sa.Table(
            "aliases", meta,
            sa.Column("name", sa.String(100), primary_key=True),
            sa.Column("alias", sa.String(100), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
        )  # fmt: skip
        self.events = sa.Table(
            "events", meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.String(40), nullable=False),
            sa.Column("by", sa.String(200), nullable=False),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("action", sa.String(40), nullable=False),
            sa.Column("version", sa.Integer),
            sa.Column("alias", sa.String(100)),
            sa.Column("detail", sa.Text, nullable=False),
        )  # fmt: skip
        try:
            connect_args = {"timeout": 10} if sqlite and "creator" not in options else {}
            self.engine = sa.create_engine("sqlite://" if file is not None else self.url, connect_args=connect_args,
                                           **options)  # fmt: skip
            if sqlite:
                sa.event.listen(self.engine, "connect", _sqlite_reader if read_only else _sqlite_pragmas)
            if read_only:
                with self.engine.connect() as connection:  # opens now: a missing file or server is said here
                    connection.execute(sa.select(self.versions.c.name).limit(1))
            else:
                meta.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise RegistryUnavailable(f"the registry at {where} cannot be opened: {_reason(exc)}",
                                      hint="check the path or URL, and that the database server runs") from None  # fmt: skip

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Any]:
        """One transaction: everything in it is written, or nothing."""
        if write and self.read_only:
            raise ConfigError(f"the registry at {self.url} was opened read-only", hint="open it without read_only")
        try:
            with self.engine.begin() as connection:
                yield connection
        except self._sa.exc.OperationalError as exc:
            raise RegistryUnavailable(f"the registry at {self.url} is unavailable: {_reason(exc)}",
                                      hint="another process may hold its lock: retry") from None  # fmt: skip

    def _log(
        self, connection: Any, name: str, action: str, version: int | None, alias: str | None, **detail: Any
    ) -> None:
        connection.execute(self.events.insert().values(at=_now(), by=_who(), name=name, action=action, version=version,
                                                       alias=alias, detail=json.dumps(detail)))  # fmt: skip

    # ------------------------------------------------------------------------------------------ writes

    def register(self, package: str | Path, *, name: str | None = None) -> int:
        """Register a package folder as the next version of ``name`` (default: the package's own name);
        the same package registered again returns its version.

        Raises:
            PackageError: Not a package, or a file was modified.
        """
        path = Path(package).resolve()
        manifest = read_manifest(path)
        name = name or str(manifest["name"])
        digest = sha256_file(path / "package.json")
        sa = self._sa
        with self._transaction(write=True) as connection:
            found = connection.execute(sa.select(self.versions.c.version).where(
                self.versions.c.name == name, self.versions.c.sha256 == digest)).first()  # fmt: skip
            if found is not None:
                return int(found[0])
            latest = connection.execute(sa.select(sa.func.max(self.versions.c.version)).where(
                self.versions.c.name == name)).scalar()  # fmt: skip
            version = int(latest or 0) + 1
            from seekforge.core.variants import model_version

            connection.execute(self.versions.insert().values(
                name=name, version=version, package=str(path), sha256=digest, model_version=model_version(manifest),
                metrics=json.dumps(manifest.get("metrics", {}).get("test", {}), default=str),
                gates=json.dumps(gates_of(manifest)), lineage=json.dumps(manifest.get("lineage", {}), default=str),
                created_at=_now(), created_by=_who(),
            ))  # fmt: skip
            self._log(connection, name, "register", version, None, package=str(path))
        return version

    def promote(self, name: str, version: int, *, alias: str = "champion", force: bool = False, note: str = "") -> None:
        """Point ``alias`` at ``version``.

        Raises:
            ConfigError: No such version, or one that failed a gate (unless ``force``, which is recorded).
            PackageError: The package moved or changed since it was registered.
        """
        found = self.get(name, version)
        self.check_package(found)
        if not found.passed and not force:
            failed = [
                f"{k}: {'; '.join(v.get('reasons', [])) or 'failed'}"
                for k, v in found.gates.items()
                if not v.get("passed", True)
            ]
            raise ConfigError(
                f"{name} version {version} failed its gates ({' | '.join(failed)}); '{alias}' stays where it is",
                hint="fix the model, or promote it anyway with --force (the registry records that you did)",
            )
        with self._transaction(write=True) as connection:
            previous = self._alias(connection, name, alias)
            table = self.aliases
            connection.execute(table.delete().where(table.c.name == name, table.c.alias == alias))
            connection.execute(table.insert().values(name=name, alias=alias, version=version))
            self._log(connection, name, "promote", version, alias, previous=previous, forced=force and not found.passed,
                      note=note)  # fmt: skip

    def rollback(self, name: str, *, alias: str = "champion") -> int:
        """Point ``alias`` back at the version it held before the promotion of the one it holds; returns that
        version (rolling back again goes one promotion further back).

        Raises:
            ConfigError: The alias was never moved (nothing to roll back to).
        """
        sa = self._sa
        with self._transaction(write=True) as connection:
            current = self._alias(connection, name, alias)
            # the promotion that made the current version hold the alias says what it held before
            promoted = connection.execute(sa.select(self.events.c.detail).where(
                self.events.c.name == name, self.events.c.alias == alias, self.events.c.action == "promote",
                self.events.c.version == current).order_by(self.events.c.id.desc())).first()  # fmt: skip
            previous = json.loads(promoted[0]).get("previous") if promoted is not None else None
            if current is None or previous is None:
                raise ConfigError(f"'{alias}' of {name} has no earlier version to go back to",
                                  hint=f"promote a version: seekforge registry promote {name} VERSION")  # fmt: skip
            table = self.aliases
            connection.execute(
                table.update().where(table.c.name == name, table.c.alias == alias).values(version=previous)
            )
            self._log(connection, name, "rollback", previous, alias, previous=current)
        return int(previous)

    # ------------------------------------------------------------------------------------------- reads

    def _alias(self, connection: Any, name: str, alias: str) -> int | None:
        sa, table = self._sa, self.aliases
        row = connection.execute(sa.select(table.c.version).where(table.c.name == name, table.c.alias == alias)).first()
        return int(row[0]) if row is not None else None

    def names(self) -> list[str]:
        sa = self._sa
        with self._transaction() as connection:
            return [
                r[0]
                for r in connection.execute(sa.select(self.versions.c.name).distinct().order_by(self.versions.c.name))
            ]

    def versions_of(self, name: str) -> list[Version]:
        """Every version of ``name``, oldest first, with the aliases pointing at it.

        Raises:
            ConfigError: No model of that name.
        """
        sa = self._sa
        with self._transaction() as connection:
            rows = connection.execute(sa.select(self.versions).where(self.versions.c.name == name)
                                      .order_by(self.versions.c.version)).mappings().all()  # fmt: skip
            aliases = connection.execute(sa.select(self.aliases).where(self.aliases.c.name == name)).mappings().all()
        if not rows:
            known = self.names()
            raise ConfigError(f"the registry holds no model '{name}'",
                              hint=f"registered: {', '.join(known)}" if known else "register one: seekforge registry register PACKAGE")  # fmt: skip
        held: dict[int, list[str]] = {}
        for a in aliases:
            held.setdefault(int(a["version"]), []).append(str(a["alias"]))
        return [_version(r, tuple(sorted(held.get(int(r["version"]), [])))) for r in rows]

    def get(self, name: str, version: int) -> Version:
        found = {v.version: v for v in self.versions_of(name)}
        if version not in found:
            raise ConfigError(f"{name} has no version {version}", hint=f"its versions: {', '.join(map(str, found))}")
        return found[version]

    def history(self, name: str) -> list[dict[str, Any]]:
        """Who did what when to ``name``, oldest first."""
        sa = self._sa
        with self._transaction() as connection:
            rows = connection.execute(sa.select(self.events).where(self.events.c.name == name)
                                      .order_by(self.events.c.id)).mappings().all()  # fmt: skip
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]

    def resolve(self, reference: str) -> Path:
        """The package folder of ``NAME@ALIAS``, ``NAME@VERSION`` or ``NAME`` (its latest version), checked
        against its registered checksum.

        Raises:
            ConfigError: No such model, version or alias.
            PackageError: The package moved or changed since it was registered.
        """
        name, _, which = reference.removeprefix("registry:").partition("@")
        versions = self.versions_of(name)
        if not which:
            found = versions[-1]
        elif which.isdigit():
            found = self.get(name, int(which))
        else:
            held = [v for v in versions if which in v.aliases]
            if not held:
                raise ConfigError(f"{name} has no alias '{which}'",
                                  hint=f"promote a version: seekforge registry promote {name} VERSION --alias {which}")  # fmt: skip
            found = held[0]
        self.check_package(found)
        return Path(found.package)

    def check_package(self, found: Version) -> None:
        """The registered package is where it was, unchanged."""
        path = Path(found.package)
        if not (path / "package.json").is_file():
            raise PackageError(f"{found.name} version {found.version}: its package {path} is gone",
                               hint="packages stay files: put it back, or register the moved folder again")  # fmt: skip
        if sha256_file(path / "package.json") != found.sha256:
            raise PackageError(f"{found.name} version {found.version}: {path} changed since it was registered",
                               hint="register the package again (a new version)")  # fmt: skip


def _version(row: Any, aliases: tuple[str, ...]) -> Version:
    return Version(
        name=row["name"], version=int(row["version"]), package=row["package"], sha256=row["sha256"],
        model_version=row["model_version"], metrics=json.loads(row["metrics"]), gates=json.loads(row["gates"]),
        lineage=json.loads(row["lineage"]), created_at=row["created_at"], created_by=row["created_by"], aliases=aliases,
    )  # fmt: skip


def _sqlite_reader(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
