"""Writing results: the one JSON cleaner, the one atomic file writer, and all-or-nothing
output directories.

- :func:`jsonable`: a JSON-safe copy (numpy scalars/arrays to Python, tuples to lists,
  NaN/inf to ``None``, anything else unknown to ``str``); :func:`dumps` uses it.
- :func:`atomic_write_text`: temp file in the same directory, then a rename.
- :class:`OutputDir`: a command's outputs staged in a hidden directory next to ``--out``
  and moved in only when every file was written, so a failing command leaves the
  previous outputs untouched. A manifest (``.fairsched.json``) records which command
  wrote the directory; another command refuses to write there unless ``force``.
- :func:`records_csv`: a list of (nested) dicts as CSV text (the CSV twin of a JSON result).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

__all__ = ["MANIFEST", "OutputDir", "OutputError", "atomic_write_text", "dumps", "jsonable",
           "records_csv"]

MANIFEST = ".fairsched.json"
"""Name of the file, in an output directory, that says which command wrote it."""


class OutputError(ValueError):
    """An output directory that cannot or must not be written (the message says why)."""


def jsonable(x):
    """A JSON-safe copy of ``x``: mappings (keys to ``str``), lists/tuples and numpy arrays
    to lists, numpy scalars to Python numbers, non-finite floats to ``None``, paths and
    other unknown objects to ``str``."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist") and hasattr(x, "dtype"):  # numpy array or scalar
        return jsonable(x.tolist())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, bool | int | str) or x is None:
        return x
    return str(x)


def dumps(doc) -> str:
    """``doc`` as indented JSON text, via :func:`jsonable` (never NaN/Infinity)."""
    return json.dumps(jsonable(doc), indent=2, allow_nan=False) + "\n"


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temp file in the same directory and a rename,
    so readers see the old file or the whole new one, never a part. The file gets the
    usual permissions (0666 minus the umask). Returns ``path`` as a :class:`Path`.

    Raises:
        OSError: the directory is missing or not writable (the temp file is removed).
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    # O_EXCL on a random name, not mkstemp: mkstemp's files are 0600
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def records_csv(rows: list[Mapping]) -> str:
    """CSV text of ``rows`` (dicts; nested dicts flattened to ``a.b`` columns, lists
    written as JSON). Columns in order of first appearance."""
    flat = [_flatten(jsonable(r)) for r in rows]
    cols = list(dict.fromkeys(k for r in flat for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue()


def _flatten(d: Mapping, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{key}."))
        elif isinstance(v, list):
            out[key] = json.dumps(v, separators=(",", ":"))
        else:
            out[key] = v
    return out


def _manifest(path: Path) -> dict | None:
    """The manifest of directory ``path`` (None if it has none or it is unreadable)."""
    try:
        doc = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


class OutputDir:
    """All-or-nothing outputs of one command in directory ``path``.

    Use as a context manager: :meth:`write_text` (and :meth:`write_json`,
    :meth:`write_csv`), or any writer given :attr:`staging` as its directory, write into a
    hidden staging directory next to ``path``; on a clean exit every entry of the staging
    directory is moved into ``path`` (one rename each, after all were written), entries
    of the previous run of the same command that this run did not write are removed, and
    the manifest is updated. On an exception nothing in ``path`` changes and the staging
    directory is deleted.

    Args:
        path: the output directory (created if missing).
        command: the command's name, recorded in the manifest.
        force: write even into a directory holding another command's results or files
            fairsched did not write (those files are kept; only names this run writes are
            replaced).

    Raises (from :meth:`check`, called by ``__enter__``):
        OutputError: ``path`` exists and is not a directory; it holds another command's
            results, or non-hidden files without a manifest, and ``force`` is false; it is
            not writable.
    """

    def __init__(self, path: str | os.PathLike, command: str, force: bool = False) -> None:
        self.path, self.command, self.force = Path(path), command, force
        self.files: list[str] = []
        self._stage: Path | None = None

    @property
    def staging(self) -> Path:
        """The staging directory (inside ``with`` only): write files here."""
        if self._stage is None:
            raise RuntimeError("OutputDir.staging outside `with`")
        return self._stage

    def check(self) -> None:
        """Validate ``path`` without writing anything into it (see the class)."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise OutputError(f"cannot write to {p}: it exists and is not a directory")
        anc = p.absolute()
        while not anc.exists():
            anc = anc.parent
        if not anc.is_dir():
            raise OutputError(f"cannot write to {p}: {anc} is not a directory")
        if not os.access(anc, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write to {p}: {anc} is not writable")
        if not p.is_dir() or self.force:
            return
        man = _manifest(p)
        if man is not None:
            if man.get("command") != self.command:
                raise OutputError(f"{p} holds the results of `fairsched {man.get('command')}`; choose "
                                  f"another --out or pass --force to write `{self.command}` results there")
            return
        if any(not f.name.startswith(".") for f in p.iterdir()):
            raise OutputError(f"{p} holds files that fairsched did not write; choose another --out "
                              f"(or an empty directory) or pass --force")

    def __enter__(self) -> OutputDir:
        self.check()
        parent = self.path.absolute().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._stage = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent))
        except OSError as e:
            raise OutputError(f"cannot write to {self.path}: {e.strerror or e}") from None
        return self

    def write_text(self, name: str, text: str) -> Path:
        """Stage ``text`` as file ``name``; returns the path it will have in ``path``."""
        (self.staging / name).write_text(text, encoding="utf-8")
        return self.path / name

    def write_json(self, name: str, doc) -> Path:
        """Stage ``doc`` as JSON (:func:`dumps`)."""
        return self.write_text(name, dumps(doc))

    def write_csv(self, name: str, rows: list[Mapping]) -> Path:
        """Stage ``rows`` as CSV (:func:`records_csv`)."""
        return self.write_text(name, records_csv(rows))

    def __exit__(self, exc_type, exc, tb) -> None:
        stage, self._stage = self._stage, None
        try:
            if exc_type is None:
                self._commit(stage)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _commit(self, stage: Path) -> None:
        p = self.path
        self.files = sorted(f.name for f in stage.iterdir())
        try:
            p.mkdir(parents=True, exist_ok=True)
            old = _manifest(p) or {}
            stale = [n for n in old.get("files") or [] if old.get("command") == self.command
                     and isinstance(n, str) and n not in self.files and "/" not in n and n not in ("", ".", "..")]
            for name in self.files:
                if (stage / name).is_dir() and (p / name).is_dir() and name in (old.get("files") or []):
                    shutil.rmtree(p / name)
                os.replace(stage / name, p / name)
            for name in stale:
                if (p / name).is_dir():
                    shutil.rmtree(p / name, ignore_errors=True)
                else:
                    (p / name).unlink(missing_ok=True)
            atomic_write_text(p / MANIFEST, json.dumps({"command": self.command, "files": self.files},
                                                       indent=2) + "\n")
        except OSError as e:
            raise OutputError(f"cannot write to {p}: {e.strerror or e}") from None
