"""The model registry: named models, numbered versions pointing at package folders (with the checksum of
each ``package.json``), aliases such as ``champion`` moved by promotion and rollback, gate results, and a
log of who did what when. SQLite by default (WAL, one file a team can share on a disk), any SQLAlchemy URL
(PostgreSQL) otherwise. Packages stay files; the registry only points at them.

Example:
    >>> registry = Registry("runs/registry.db")
    >>> version = registry.register("runs/credit/<stamp>/package")
    >>> registry.promote("credit", version, alias="champion")
    >>> registry.resolve("credit@champion")
"""

from seekforge.registry._store import DEFAULT, Registry, RegistryUnavailable, Version, location

__all__ = ["DEFAULT", "Registry", "RegistryUnavailable", "Version", "location"]
