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
import tempfile

import numpy as np

from .diagnostics import Diagnostic, GraphDSLError


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise GraphDSLError(Diagnostic("E308", f"cannot write `{path}`: the folder `{folder}` does not exist",
                                       help=("create the folder first, or choose another path",)))
    if os.path.isdir(path):
        raise GraphDSLError(Diagnostic("E308", f"cannot write `{path}`: it is a directory"))
    payload = data.encode("utf-8") if isinstance(data, str) else data
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
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise GraphDSLError(Diagnostic("E308", f"cannot write `{path}`: {err.strerror or err}")) from None
        raise


def save_npz(path, arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()})
    atomic_write(path, buf.getvalue())


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
