"""The one error type the trace loaders raise, :class:`TraceError`, and their one warning,
:class:`TraceWarning`."""

from __future__ import annotations

import os


class TraceError(ValueError):
    """A trace file that cannot be loaded, with the place of the problem.

    The message reads ``path:line: field 'name': reason``; the ``:line`` part is left out
    when ``line`` is None (a whole-file problem such as a missing or empty file) and the
    ``field '...':`` part when ``field`` is None (e.g. a line that is not JSON).

    Attributes:
        path: the file, as a string.
        line: 1-based line number in the file, or None.
        field: the JSON field at fault, or None.
        reason: the message without the location prefix.

    Example:
        ``trace.jsonl:7: field 'timestamp': must be non-decreasing (got 3.2 after 4.0)``
    """

    def __init__(self, path: str | os.PathLike[str], line: int | None, field: str | None,
                 reason: str) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.field = field
        self.reason = reason
        where = self.path if line is None else f"{self.path}:{line}"
        what = reason if field is None else f"field {field!r}: {reason}"
        super().__init__(f"{where}: {what}")

    def __reduce__(self):  # keep the exception picklable (e.g. across multiprocessing)
        return (type(self), (self.path, self.line, self.field, self.reason))


class TraceWarning(UserWarning):
    """A trace that loads but looks wrong: timestamps whose implied rate or duration is
    implausible for the unit the format assumes (the message names the file and unit)."""
