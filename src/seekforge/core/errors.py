"""The error hierarchy.

Every error a user can cause derives from :class:`SeekforgeError` and also from the builtin it resembles,
so ``except ValueError`` keeps working. A message says what is wrong and the offending value; ``hint``
says how to fix it. The CLI prints both without a traceback and exits with :attr:`exit_code`.
"""

from __future__ import annotations

from dataclasses import dataclass


class SeekforgeError(Exception):
    """Root of every seekforge error.

    Args:
        message: What is wrong, with the offending value.
        hint: How to fix it.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\n  hint: {self.hint}"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file.

    Attributes:
        path: Dotted path of the field, e.g. ``train.lr``.
        message: What is wrong.
        line: 1-based line in the source file, when known.
        suggestion: A nearby valid key for a misspelled one.
    """

    path: str
    message: str
    line: int | None = None
    suggestion: str | None = None

    def render(self, source: str | None = None) -> str:
        where = self.path or "<root>"
        if self.line is not None:
            where += f" ({source or 'line'}{':' if source else ' '}{self.line})"
        text = f"{where}: {self.message}"
        if self.suggestion:
            text += f"; did you mean '{self.suggestion}'?"
        return text


class ConfigError(SeekforgeError, ValueError):
    """A recipe or configuration file is invalid. Holds every issue found, not only the first."""

    def __init__(
        self,
        message: str,
        *,
        issues: list[ConfigIssue] | None = None,
        source: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.issues = issues or []
        self.source = source
        if self.issues:
            lines = [message] + [f"  - {issue.render(source)}" for issue in self.issues]
            message = "\n".join(lines)
        super().__init__(message, hint=hint)


class DataError(SeekforgeError, ValueError):
    """Input data cannot be read or does not match what the recipe declares."""


class PackageError(SeekforgeError, ValueError):
    """A model package is missing, incomplete or has been modified."""


class CheckpointError(SeekforgeError, ValueError):
    """A training checkpoint is damaged or does not fit the model it should resume."""


class RegistryError(SeekforgeError, LookupError):
    """An unknown or duplicate name in a registry."""


class NotFittedError(SeekforgeError, AttributeError):
    """An object was used before ``fit`` was called."""


class MissingDependencyError(SeekforgeError, ImportError):
    """An optional dependency is not installed."""


class TrainingInterrupted(SeekforgeError, RuntimeError):
    """Training stopped on request (Ctrl-C, SIGTERM) after writing a checkpoint; ``--resume`` continues it."""

    exit_code = 130


def first_line(exc: BaseException, *, limit: int = 400) -> str:
    """The first line ``exc`` says that is not blank, stripped, at most ``limit`` characters; its type's name
    when it says nothing (a library's error as one line of a message of ours)."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)[:limit]
