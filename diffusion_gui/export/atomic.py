"""Atomic writes and the export errors.

A file is written under a temporary, hidden name in the target's own folder (so the final
``os.replace`` is a rename on one filesystem) and renamed onto the target only once it is
complete. On an error or a cancel the temporary file is removed and an existing target is
left exactly as it was.

A process killed mid-write (power cut, ``kill -9``) cannot remove its temporary file. The next
:func:`atomic_path` into that folder removes **stale temporaries of our own naming**
(:func:`remove_stale_temporaries`): hidden regular files named exactly as :func:`atomic_path`
names them (``.<stem>-<8 hex digits>.tmp<ext>``) and not modified for :data:`STALE_AFTER_S`
(an hour). A live writer touches its file far more often than that, so it is never one of them;
other hidden files and anything not matching the pattern are never touched. A folder is swept at
most once a minute per process.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import ExportError

__all__ = ["ExportError", "Cancelled", "atomic_path", "check_target", "check_folder",
           "export_oserror", "call_progress", "write_text_atomic", "remove_stale_temporaries",
           "STALE_AFTER_S", "TEMP_NAME"]

#: a temporary file older than this (seconds since its last change) is left over by a killed export
STALE_AFTER_S = 3600.0
#: how :func:`atomic_path` names its temporary files: ``.<stem>-<8 hex>.tmp<ext>``
TEMP_NAME = re.compile(r"^\..+-[0-9a-f]{8}\.tmp(\.[^./\\]*)?$")
_SWEEP_EVERY_S = 60.0
_swept: dict[str, float] = {}
_swept_lock = threading.Lock()


class Cancelled(Exception):
    """The export was cancelled through its progress callback; nothing was written."""


def _name(p) -> str:
    return os.fspath(p)


def export_oserror(e: OSError, target) -> ExportError:
    """Translate an OSError met while writing ``target`` into a one-line :class:`ExportError`."""
    target = Path(target)
    folder = target.parent
    code = getattr(e, "errno", None)
    if code == errno.ENOSPC or code == getattr(errno, "EDQUOT", -1):
        return ExportError(f"the disk is full: could not write '{_name(target)}'")
    if code in (errno.EACCES, errno.EPERM) or isinstance(e, PermissionError):
        return ExportError(f"permission denied: cannot write to the folder '{_name(folder)}'")
    if code == errno.EROFS:
        return ExportError(f"the folder '{_name(folder)}' is on a read-only disk")
    if code == errno.ENOENT or isinstance(e, FileNotFoundError):
        return ExportError(f"the folder '{_name(folder)}' does not exist")
    if code == errno.ENOTDIR or isinstance(e, NotADirectoryError):
        return ExportError(f"cannot write '{_name(target)}': a part of its path is not a folder")
    if code == errno.EISDIR or isinstance(e, IsADirectoryError):
        return ExportError(f"cannot write '{_name(target)}': it is a folder")
    reason = e.strerror or str(e) or type(e).__name__
    return ExportError(f"could not write '{_name(target)}': {' '.join(reason.split())}")


def check_folder(folder) -> Path:
    """Refuse a folder that does not exist, is not a folder, or cannot be written to."""
    folder = Path(folder) if os.fspath(folder) else Path(".")
    if not folder.exists():
        # A path whose parent is a file raises NotADirectoryError inside exists() on some
        # systems and returns False on others: look for the offending component.
        for up in [folder, *folder.parents]:
            if up.exists() and not up.is_dir():
                raise ExportError(f"cannot write into '{_name(folder)}': "
                                  f"'{_name(up)}' is a file, not a folder")
        raise ExportError(f"the folder '{_name(folder)}' does not exist")
    if not folder.is_dir():
        raise ExportError(f"cannot write into '{_name(folder)}': it is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"permission denied: cannot write to the folder '{_name(folder)}'")
    return folder


def check_target(path) -> Path:
    """Check that ``path`` could be written now (its folder exists and is writable, and it is
    not itself a folder). Returns it as a :class:`Path`."""
    target = Path(path)
    check_folder(target.parent)
    if target.is_dir():
        raise ExportError(f"cannot write '{_name(target)}': it is a folder")
    return target


def remove_stale_temporaries(folder, *, older_than_s: float = STALE_AFTER_S,
                             now: float | None = None) -> list[Path]:
    """Remove the temporary files of killed exports from ``folder``: regular files (not links)
    whose name matches :data:`TEMP_NAME` and whose last change is more than ``older_than_s``
    seconds ago. Never raises (a file that cannot be removed stays). Returns what it removed."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        if not TEMP_NAME.match(e.name):
            continue
        try:
            st = e.stat(follow_symlinks=False)
            if not e.is_file(follow_symlinks=False) or now - st.st_mtime <= older_than_s:
                continue
            os.unlink(e.path)
            removed.append(Path(e.path))
        except OSError:
            continue
    return removed


def _sweep(folder: Path) -> None:
    """:func:`remove_stale_temporaries` of ``folder``, at most once a minute per folder."""
    key = os.path.abspath(folder)
    now = time.monotonic()
    with _swept_lock:
        if now - _swept.get(key, -1e18) < _SWEEP_EVERY_S:
            return
        _swept[key] = now
    remove_stale_temporaries(folder)


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` when the block succeeds.

    The temporary name is hidden (``.name-XXXX.tmp.ext``) and keeps the target's extension so
    that writers which go by the extension still work. If the block raises (including
    :class:`Cancelled` and ``KeyboardInterrupt``) the temporary file is deleted and ``path`` is
    untouched. OSErrors (disk full, permission denied, ...) become :class:`ExportError`.
    The file gets the usual permissions (``0o666`` minus the umask), not ``mkstemp``'s 0600.
    Stale temporaries of killed exports in the folder are removed first (module docstring).
    """
    target = check_target(path)
    folder = target.parent
    _sweep(folder)
    while True:
        tmp = folder / f".{target.stem}-{secrets.token_hex(4)}.tmp{target.suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as e:
            raise export_oserror(e, target) from None
        os.close(fd)
        break
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)               # a full disk may only show up here
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise export_oserror(e, target) from e
        raise


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`: a failure leaves no
    partial file and raises :class:`ExportError` with a one-line message. Returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def call_progress(progress, done: int, total: int) -> None:
    """Report progress; a callback returning ``False`` (not ``None``) cancels."""
    if progress is not None and progress(done, total) is False:
        raise Cancelled("export cancelled")
