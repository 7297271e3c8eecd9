"""Atomic file writes and JSON that stays valid whatever the numbers.

Every file graphdsl writes goes to a temporary file in the same directory that
is then renamed over the target, so a failure or Ctrl-C never leaves a
truncated file or spoils a good one.
"""
from __future__ import annotations

import io
import json
import math
import os
import stat
import tempfile

import numpy as np

from .diagnostics import Diagnostic, GraphDSLError


def check_writable(path: str | os.PathLike, force: bool = False, option: str = "") -> None:
    """Raise E308 now if `path` cannot be written, before hours of work (training) are spent.

    The same checks atomic_write makes first: the folder exists, is a folder and is
    writable, the path is not a directory, and an existing file is not write-protected
    (unless `force`). Devices and pipes pass. `option` names the path in that last message.
    """
    path = os.fspath(path)
    if _is_special(path):
        return
    target, folder = _target_and_folder(path)
    if not os.access(folder, os.W_OK):
        raise GraphDSLError(Diagnostic("E308", f"cannot write `{path}`: the folder `{os.path.dirname(path) or '.'}` "
                                               "is not writable", help=("choose another path",)))
    _refuse_write_protected(path, target, force, option)


def _refuse_write_protected(path: str, target: str, force: bool, option: str = "") -> None:
    """E308 when `target` exists and the user may not write it, unless forced.

    The atomic rename needs only the folder's write permission, so without this a
    read-only file would be replaced silently. access() says yes to root whatever the
    mode, so a file with no write bit at all counts as protected for root too.
    """
    if force:
        return
    try:
        mode = os.stat(target).st_mode
    except OSError:  # no such file yet: nothing to protect
        return
    if not stat.S_ISREG(mode) or (mode & 0o222 and os.access(target, os.W_OK)):
        return
    raise GraphDSLError(Diagnostic(
        "E308", f"cannot write {option + ' ' if option else ''}`{path}`: the file is write-protected (mode {stat.filemode(mode)[1:]})",
        help=("replace it anyway with --force (Python: force=True), make it writable, or choose another path",)))


def _is_special(path: str) -> bool:
    """A device or a pipe (/dev/stdout, /dev/null)."""
    return os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path)


def _target_and_folder(path: str) -> tuple[str, str]:
    """The file to replace (through a symlink: the file it points to) and its folder, or E308."""
    if "\0" in path:  # the OS refuses it with a ValueError, not an OSError
        raise GraphDSLError(Diagnostic("E308", f"cannot write `{path}`: a file name cannot contain a NUL byte"))
    target = os.path.realpath(path) if os.path.islink(path) else path
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        # Name the folder as the user wrote it: `missing`, not /home/.../missing.
        shown = os.path.dirname(target) or "."
        parent = shown
        while parent and not os.path.exists(parent) and os.path.dirname(parent) not in (parent, ""):
            parent = os.path.dirname(parent)
        why = f"`{parent}` is a file, not a folder" if os.path.exists(parent) and not os.path.isdir(parent) \
            else f"the folder `{shown}` does not exist"
        raise GraphDSLError(Diagnostic("E308", f"cannot write `{path}`: {why}",
                                       help=("create the folder first, or choose another path",)))
    if os.path.isdir(target):
        raise GraphDSLError(Diagnostic("E308", f"cannot write `{path}`: it is a directory"))
    return target, folder


def atomic_write(path: str | os.PathLike, data: bytes | str, force: bool = False) -> None:
    """Write `data` to `path` atomically; refuse a write-protected file unless `force`."""
    path = os.fspath(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if _is_special(path):
        # Renaming over a device would replace the device itself; there is nothing
        # to spoil, so write straight into it.
        _write_through(path, path, payload)
        return
    target, folder = _target_and_folder(path)  # through a symlink: replace its file, keep the link
    _refuse_write_protected(path, target, force)
    try:
        mode = os.stat(target).st_mode & 0o7777 if os.path.exists(target) else _default_mode()
    except OSError:
        mode = 0o644
    try:
        fd, tmp = tempfile.mkstemp(prefix=".graphdsl-", suffix=".tmp", dir=folder)
    except OSError as err:
        raise GraphDSLError(Diagnostic("E308", f"cannot write `{path}`: {err.strerror or err}",
                                       help=("check that the folder is writable",))) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as err:  # Ctrl-C included: the old file stays as it was, no temporary is left
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise GraphDSLError(Diagnostic("E308", f"cannot write `{path}`: {err.strerror or err}")) from None
        raise


def _default_mode() -> int:
    """0o666 less the process's umask: the mode open() would give a new file."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _write_through(path, target, payload) -> None:
    try:
        with open(target, "wb") as fh:
            fh.write(payload)
            fh.flush()
    except OSError as err:
        raise GraphDSLError(Diagnostic("E308", f"cannot write `{path}`: {err.strerror or err}")) from None


def save_npz(path, arrays: dict, force: bool = False) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()})
    atomic_write(path, buf.getvalue(), force)


# JSON has no NaN or Infinity (RFC 8259): non-finite numbers are written as the
# strings "NaN", "Infinity" and "-Infinity". docs/language.md says so.
def jsonable(value):
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        f = float(value)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        return f
    if isinstance(value, np.integer):
        return int(value)
    return value


def dumps(value, **kw) -> str:
    return json.dumps(jsonable(value), allow_nan=False, **kw)
