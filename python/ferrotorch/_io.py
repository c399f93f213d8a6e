"""Atomic file writes and checked reads shared by every file ferrotorch writes
(training states, optimizer states, callbacks, monitor reports).

Temporary files. A write goes to ``.<name>.<pid>.<random>.tmp`` in the
destination's folder, is fsynced and renamed over the destination. A process
killed mid-write leaves its temporary file behind; every later write into the
same folder first removes the temporary files of that naming pattern whose
writer process is gone (never those of a live process, nor this process's
own, which may belong to another thread). So stray files are bounded by the
number of writers alive, not by the number of crashes. The Rust writers of
``.fdl`` and safetensors files use the same pattern and the same rule.

Checksums. :func:`save_checked` writes ``torch.save``'s zip file with a
SHA-256 of the whole file in the zip comment (the zip's end record lets a
comment follow it; ``torch.load`` ignores it), so any changed bit is found by
:func:`read_checked` before unpickling, while the file stays a plain
``torch.load``-able zip. Files without the comment (older versions,
``torch.save``) are still read.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import struct
from typing import IO, Any, Callable, Union

import torch

from .errors import CheckpointError, FileError, InternalError

PathLike = Union[str, "os.PathLike[str]"]

_TMP = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]+\.tmp$")
_EOCD = b"PK\x05\x06"
_TAG = b"ferrotorch-sha256:"
_COMMENT_LEN = len(_TAG) + 64


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OverflowError:  # not a pid at all: not ours to judge
        return True
    return True


def remove_stale_temps(folder: str) -> int:
    """Removes ``.<name>.<pid>.<x>.tmp`` files in ``folder`` whose writer
    process is no longer alive; returns how many were removed."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    me = os.getpid()
    for name in names:
        m = _TMP.match(name)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid == me or _alive(pid):
            continue
        try:
            os.unlink(os.path.join(folder, name))
            removed += 1
        except OSError:  # another cleaner got there first, or no permission
            pass
    return removed


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """``write(f)`` into a temporary file in the same folder, fsync, rename
    over ``path``, fsync the folder: a crash leaves the previous file whole.
    Stale temporary files of dead writers are removed first. The file gets
    the usual umask-based mode. OS failures raise :class:`FileError`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    remove_stale_temps(folder)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666 & ~umask)
    except OSError as e:
        raise FileError(e.errno, f"cannot write '{path}': {e.strerror}", path) from e
    try:
        with os.fdopen(fd, "w+b") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and not isinstance(e, FileError):
            raise FileError(e.errno, f"cannot write '{path}': {e.strerror or e}", path) from e
        raise
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def atomic_save(obj: Any, path: PathLike) -> None:
    """``torch.save(obj)`` written atomically."""
    atomic_write(path, lambda f: torch.save(obj, f))


def _digest(head: Union[bytes, memoryview], length_field: bytes) -> str:
    """SHA-256 over everything but the comment: the bytes before the zip
    comment-length field, then that field."""
    h = hashlib.sha256()
    h.update(head)
    h.update(length_field)
    return h.hexdigest()


def _write_checked(obj: Any, f: IO[bytes]) -> None:
    torch.save(obj, f)
    f.flush()
    end = f.tell()
    f.seek(end - 22)
    eocd = f.read(22)
    if eocd[:4] != _EOCD or eocd[-2:] != b"\0\0":  # torch always ends with a bare end record
        raise InternalError("torch.save did not end with a bare zip end record; cannot add a checksum")
    length_field = struct.pack("<H", _COMMENT_LEN)
    f.seek(0)
    digest = _digest(f.read(end - 2), length_field)
    f.seek(end - 2)
    f.write(length_field + _TAG + digest.encode())


def save_checked(obj: Any, path: PathLike) -> None:
    """``torch.save(obj)`` written atomically with a SHA-256 of the whole file
    in its zip comment (see the module docstring)."""
    atomic_write(path, lambda f: _write_checked(obj, f))


def _verify(kind: str, path: str, data: bytes) -> bool:
    """Checks the checksum when the file has one; returns whether it had."""
    bad = lambda why: CheckpointError(f"{kind} '{path}': {why}")  # noqa: E731
    size = len(data)
    if size == 0:
        raise bad("the file is empty")
    if size < 22:
        raise bad(f"the file is truncated ({size} bytes) or not a torch zip file")
    tail_start = max(0, size - 22 - 0xFFFF)
    # The end record is the last signature whose comment reaches the end.
    pos = data.rfind(_EOCD, tail_start, size - 18)  # a full 22-byte record must fit
    while pos >= 0 and pos + 22 + struct.unpack("<H", data[pos + 20 : pos + 22])[0] != size:
        pos = data.rfind(_EOCD, tail_start, pos)
    if pos < 0:
        raise bad("no zip end record: the file is truncated or not a torch zip file")
    comment = data[pos + 22 :]
    if not comment:
        return False  # a file from before checksums, or plain torch.save
    if len(comment) != _COMMENT_LEN or not comment.startswith(_TAG):
        raise bad("the checksum field is corrupt")
    want = comment[len(_TAG) :].decode("ascii", "replace")
    if _digest(memoryview(data)[: pos + 20], data[pos + 20 : pos + 22]) != want:
        raise bad(
            "checksum mismatch (the SHA-256 of the file differs from the one stored): the file is corrupt"
        )
    return True


def read_checked(kind: str, path: PathLike) -> Any:
    """Verifies the file's checksum (when it has one), then
    ``torch.load(weights_only=True)`` on the CPU. Any failure is a
    :class:`CheckpointError` (or :class:`FileError` for OS errors) naming
    ``kind`` and the file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise FileError(e.errno, f"{kind} '{path}': {e.strerror or e}", path) from e
    _verify(kind, path, data)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch and pickle raise many kinds; all mean an unreadable file
        why = str(e).strip().splitlines()[0] if str(e).strip() else "unexpected end of data"
        raise CheckpointError(f"{kind} '{path}' cannot be read ({type(e).__name__}: {why[:300]})") from e
