"""Which files a command may write: checked once, before any work is done.

Every command's output paths (`render -o`, `equations -o`, `grad --save`,
`train --save --plot`) go through `check_outputs` with the files the command
reads. An output that is one of the inputs (by name, through a symlink or as a
hard link: the same device and inode) would destroy the input, and two outputs
that are the same file would lose the first; both are refused. So is a folder
that cannot be written, or an existing file that is write-protected (unless
forced), so that no training run ends in an error that loses its result.
"""
from __future__ import annotations

import os
from typing import Iterable, NamedTuple

from .diagnostics import fail
from .fileio import check_writable


class Named(NamedTuple):
    """A path and what the user called it on the command line (`--save`, `the model file`)."""

    what: str
    path: str


def check_outputs(outputs: Iterable[Named], inputs: Iterable[Named], force: bool = False) -> None:
    """Raise E308 if any output cannot or must not be written."""
    inputs = [i for i in inputs if i.path and os.path.exists(i.path)]  # a missing input is reported by its reader
    seen: list[Named] = []
    for out in (o for o in outputs if o.path):
        for other in inputs:
            if same_file(out.path, other.path):
                fail("E308", f"{out.what} `{out.path}` is {other.what} `{other.path}` that this command reads: "
                             "writing it would destroy it", notes=_how_linked(out.path, other.path),
                     help=(f"choose another file for {out.what}",))
        for other in seen:
            if same_file(out.path, other.path):
                fail("E308", f"{out.what} `{out.path}` and {other.what} `{other.path}` are the same file: "
                             "the second write would destroy the first", notes=_how_linked(out.path, other.path),
                     help=(f"choose another file for {out.what}",))
        check_writable(out.path, force, out.what)  # after the clashes: --force never allows those
        seen.append(out)


def same_file(a: str, b: str) -> bool:
    """Whether writing `a` would replace the regular file `b` (one may not exist yet).

    Devices and pipes are written straight through and never replaced, so
    `/dev/stdout` next to `/dev/stdin` (one terminal) is not a clash.
    """
    if "\0" in a or "\0" in b:  # no file has such a name (check_writable says so)
        return False
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:  # one does not exist: the same file only if both names lead to the same place
        return _resolved(a) == _resolved(b)
    return os.path.isfile(a) and (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _resolved(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _how_linked(out: str, other: str) -> tuple[str, ...]:
    """A note saying why two different names are one file."""
    links = [f"`{p}`" for p in (out, other) if os.path.islink(p)]
    if links:
        are = " is a symbolic link" if len(links) == 1 else " are symbolic links"
        return (" and ".join(links) + are + f" to `{os.path.realpath(out)}`",)
    if _resolved(out) != _resolved(other):
        return (f"`{out}` and `{other}` are hard links to one file",)
    return ()
