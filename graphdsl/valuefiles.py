"""Reading values: `--set` text, `.json`/`.npz` value files and `.npy` arrays.

What is accepted, and why each refusal happens before memory is spent:

- only regular files are read: a FIFO would block forever and /dev/zero never
  end, so the kind of file is checked (opened without blocking) first;
- a `.json` file (and `--set` text) is at most MAX_JSON_BYTES, checked from its
  size before it is read; an `.npy` array is checked from the shape in its
  header (`--max-elements`), and the arrays of one `.npz` together too;
- values are numbers: JSON numbers, true/false (1/0) and the strings "NaN",
  "Infinity" and "-Infinity" (what graphdsl writes); `.npy` arrays of bool,
  integer or float dtype. Strings, bytes, dates and objects are refused, never
  coerced;
- JSON objects with a key twice are refused (readers disagree on which wins);
- NaN and Inf (also a number beyond float64's range, and JSON null) are refused
  with E302 unless the caller allows them.

Every error names the file (or `--set`) and the entry.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import stat

import numpy as np

from .arrays import all_finite
from .diagnostics import GraphDSLError, fail
from .plan import DEFAULT_MAX_ELEMENTS

MAX_JSON_BYTES = 16 << 20  # JSON is for small data: parsing costs up to ~30 bytes of memory, and ~0.1 µs, per byte read
_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_JSON_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive, or an empty one


# ---- the values a caller hands over ---------------------------------------------------

def as_array(value, name: str) -> np.ndarray:
    """A Python value (the API's values) as float64, or E306: strings and dates are not coerced."""
    if type(value) is np.ndarray and value.dtype == np.float64:  # already what it would become
        return value
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in _NUMERIC_KINDS + "O":  # objects: Python numbers too large for int64 & co.
            fail("E306", f"the value of `{name}` holds {_dtype_words(arr.dtype)}; graphdsl values are real "
                         "numbers (float64)")
        return arr.astype(np.float64)
    except GraphDSLError:  # ours: a ValueError too, so let it through
        raise
    except (TypeError, ValueError, OverflowError) as err:
        fail("E306", f"the value of `{name}` is not a rectangular array of numbers ({short(err)})")


def refuse_nonfinite(value: np.ndarray, label: str) -> None:
    """E302 naming the value and its first NaN or Inf, before anything runs on it."""
    if all_finite((value,)):
        return
    finite = np.isfinite(value)
    first = np.unravel_index(int(np.argmin(finite)), value.shape) if value.ndim else ()
    bad = value[first]
    kind = "NaN" if np.isnan(bad) else ("Inf" if bad > 0 else "-Inf")
    where = f" at index [{', '.join(str(int(i)) for i in first)}]" if value.ndim else ""
    fail("E302", f"{label} is not finite: {kind}{where}",
         notes=(f"{int(value.size - np.count_nonzero(finite))} of {value.size} elements are not finite",),
         help=("NaN, Infinity, JSON null and numbers beyond float64's range (about 1.8e308) are refused in "
               "data; fix the data, or pass --allow-nonfinite (Python: check_finite=False) to go on",))


# ---- --set ---------------------------------------------------------------------------

def parse_set(text: str, max_elements: int = DEFAULT_MAX_ELEMENTS,
              allow_nonfinite: bool = False) -> tuple[str, np.ndarray]:
    """NAME=VALUE, VALUE a JSON number or array, or a path to an .npy file."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        fail("E306", f"--set expects NAME=VALUE, got `{text}`", help=("for example --set x=[1,2,3]",))
    raw = raw.strip()
    label = f"`{name}` (--set)"
    if raw.endswith(".npy"):
        value = _load_npy(raw, name, max_elements)
        label = f"`{name}` in `{raw}`"
    else:
        if len(raw) > MAX_JSON_BYTES:
            fail("E306", f"--set {name}: the value is longer than {MAX_JSON_BYTES >> 20} MiB",
                 help=("give large arrays in an .npy or .npz file",))
        document, may_hold_strings = _parse_json(
            raw, f"--set {name}", f"--set {name}: `{raw[:60]}` is neither a JSON number or array nor an .npy path",
            help=("for example --set x=[[1,2],[3,4]] or --set x=0.5",))
        value = _json_array(document, label, max_elements, may_hold_strings)
    if not allow_nonfinite:
        refuse_nonfinite(value, label)
    return name, value


# ---- value files ---------------------------------------------------------------------

def load_file(path: str, max_elements: int = DEFAULT_MAX_ELEMENTS,
              allow_nonfinite: bool = False) -> dict[str, np.ndarray]:
    """An .npz archive, or a .json object mapping names to numbers/arrays."""
    path = os.fspath(path)
    with _open_regular(path) as fh:
        if path.endswith(".json"):
            values = _read_json_file(fh, path, max_elements)
        else:
            values = _read_npz(fh, path, max_elements)
    if not allow_nonfinite:
        for name, value in values.items():
            refuse_nonfinite(value, f"`{name}` in `{path}`")
    return values


_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISSOCK, "a socket"))


def _open_regular(path: str):
    """`path` opened for binary reading if it is a regular file, else E306; never blocks.

    Only regular files are read: a FIFO's open() waits for a writer, /dev/zero never ends. stat
    first (a socket cannot be opened), then open without blocking and check the opened file again,
    in case the path changed in between.
    """
    try:
        _refuse_not_regular(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        fail("E306", f"cannot read `{path}`: {err.strerror or err}")
    except ValueError as err:  # a path with a NUL byte
        fail("E306", f"cannot read `{path!r}`: {err}")
    try:
        _refuse_not_regular(path, os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _refuse_not_regular(path, mode):
    if stat.S_ISREG(mode):
        return
    kind = next((kind for test, kind in _NOT_REGULAR if test(mode)), "not a regular file")
    fail("E306", f"`{path}` is {kind}, not a value file",
         help=("give the path of a regular .json, .npz or .npy file (copy piped data into a file first)",))


def _read_json_file(fh, path, max_elements):
    size = os.fstat(fh.fileno()).st_size
    if size > MAX_JSON_BYTES:
        fail("E306", f"`{path}` is {size / (1 << 20):,.0f} MiB; a .json value file may be at most "
                     f"{MAX_JSON_BYTES >> 20} MiB", help=("save large arrays with numpy.savez in an .npz file",))
    raw = _read_bounded(fh, MAX_JSON_BYTES)
    if raw is None:  # st_size said less: the file grew, or is one whose size is not known (/proc)
        fail("E306", f"`{path}` holds more than {MAX_JSON_BYTES >> 20} MiB; a .json value file may be at most that",
             help=("save large arrays with numpy.savez in an .npz file",))
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is not content
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        fail("E306", f"`{path}` is not UTF-8 text: byte 0x{raw[err.start]:02x} at line {line} cannot be decoded",
             help=("save the file as UTF-8",))
    document, may_hold_strings = _parse_json(text, f"`{path}`", f"`{path}` is not valid JSON")
    if not isinstance(document, dict):
        fail("E306", f"`{path}` must hold a JSON object mapping names to arrays, not {_json_type(document)}",
             help=('for example {"x": [1, 2], "W": [[1, 0], [0, 1]]}',))
    if document.duplicate is not None:
        fail("E306", f"`{path}` gives `{document.duplicate}` twice", help=("give each name once",))
    values = {name: _json_array(value, f"`{name}` in `{path}`", max_elements, may_hold_strings)
              for name, value in document.items()}
    _check_total(path, {k: v.size for k, v in values.items()}, max_elements)
    return values


class _JsonObject(dict):
    """A JSON object that remembers the first key it was given twice (JSON readers disagree on which wins)."""

    duplicate = None


def _json_object(pairs) -> _JsonObject:
    obj = _JsonObject()
    for key, value in pairs:
        if key in obj and obj.duplicate is None:
            obj.duplicate = key
        obj[key] = value
    return obj


def _read_bounded(fh, limit: int) -> bytes | None:
    """The file's bytes, or None past `limit`: read in pieces, as one read(limit) would allocate `limit` up front."""
    chunks, total = [], 0
    while total <= limit:
        chunk = fh.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    return None


def _parse_json(text: str, where: str, invalid: str, help=()) -> tuple[object, bool]:
    """The document (objects as _JsonObject), and whether any string may stand where a number belongs.

    Integers are parsed by json's own fast path; only one too long for int() (4300 digits) makes a
    second pass with every integer a float (a parse_int hook costs a Python call per number).
    """
    keys = 0

    def objects(pairs):
        nonlocal keys
        keys += len(pairs)
        return _json_object(pairs)

    try:
        try:
            document = json.loads(text, object_pairs_hook=objects)
        except json.JSONDecodeError:
            raise
        except ValueError:  # an integer of more than sys.get_int_max_str_digits() digits
            document = json.loads(text, object_pairs_hook=objects, parse_int=float)
    except RecursionError:
        fail("E306", f"{where}: the value is nested too deeply")
    except ValueError as err:  # JSONDecodeError, with its line and column
        fail("E306", f"{invalid} ({short(err)})", help=help)
    # Every key has two quotes; more quotes mean strings among the values (or quotes escaped in keys).
    return document, text.count('"') > 2 * keys


def _json_array(value, label: str, max_elements: int, may_hold_strings: bool) -> np.ndarray:
    """A parsed JSON value as float64: numbers and booleans as they are, never strings coerced."""
    arr = None
    if not may_hold_strings:  # else NumPy would turn every number into text (8M numbers: 700 MB)
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError, OverflowError):  # ragged, or an integer beyond float64
            arr = None
    if arr is None or arr.dtype.kind not in _NUMERIC_KINDS:
        try:
            items = np.asarray(value, dtype=object)
        except (ValueError, TypeError) as err:
            fail("E306", f"{label} is not a rectangular array of numbers ({short(err)})")
        arr = _from_items(items, label)
    if arr.size > max_elements:
        fail("E303", f"{label} has {arr.size:,} elements, more than the limit of {max_elements:,}",
             help=("use smaller data, or raise --max-elements",))
    return np.asarray(arr, dtype=np.float64)


def _from_items(items: np.ndarray, label: str) -> np.ndarray:
    """An object array (numbers with strings, nulls, objects or ragged rows) as float64, by the items' types.

    Vectorised over the items (a Python loop over 8M numbers takes tens of seconds); the first item
    that is not a number, in reading order, is named with its index.
    """
    flat = items.reshape(-1)
    kinds = np.frompyfunc(type, 1, 1)(flat)
    plain, ints, nulls, strings = (kinds == float) | (kinds == bool), kinds == int, kinds == type(None), kinds == str
    words = np.frompyfunc(_JSON_NONFINITE.get, 1, 1)(flat[strings]) if strings.any() else flat[strings]
    known_strings = strings.copy()
    known_strings[strings] = np.not_equal(words, None).astype(bool)
    bad = ~(plain | ints | nulls | known_strings)
    if bad.any():
        _refuse_item(items, np.unravel_index(int(np.argmax(bad)), items.shape), label)
    out = np.empty(flat.shape, dtype=np.float64)
    out[plain] = flat[plain].astype(np.float64)
    try:
        out[ints] = flat[ints].astype(np.float64)
    except OverflowError:  # an integer beyond float64 among them
        out[ints] = [_int_as_float(i) for i in flat[ints]]
    out[nulls] = math.nan  # JSON null: no number, refused as non-finite unless allowed
    out[strings] = words.astype(np.float64)
    return out.reshape(items.shape)


def _refuse_item(items, index, label):
    item = items[index]
    if isinstance(item, list):
        fail("E306", f"{label} is not a rectangular array of numbers: {_ragged_rows(items)}")
    at = f" at index [{', '.join(str(int(i)) for i in index)}]" if index else ""
    fail("E306", f"{label} holds {_json_type(item)}{at}, not a number",
         help=('values are JSON numbers, true/false (1/0), or the strings "NaN", "Infinity", '
               '"-Infinity"; write numbers without quotes',))


def _ragged_rows(items: np.ndarray) -> str:
    """Which row differs in length from the first (NumPy's own word is "inhomogeneous")."""
    flat = items.reshape(-1)
    length = [len(i) if isinstance(i, list) else None for i in flat]
    odd = next((k for k, n in enumerate(length) if n != length[0]), None)
    if odd is None:
        return "its rows differ in length"

    def row(k):
        return "row " + ", ".join(str(int(i)) for i in np.unravel_index(k, items.shape))

    def has(n):
        return "is a number" if n is None else f"has {n} entr{'y' if n == 1 else 'ies'}"
    return f"{row(odd)} {has(length[odd])} but {row(0)} {has(length[0])}"


def _int_as_float(item: int) -> float:
    try:
        return float(item)
    except OverflowError:  # beyond float64, as 1e400 is: Inf, refused as non-finite unless allowed
        return math.inf if item > 0 else -math.inf


def _json_type(item) -> str:
    if isinstance(item, str):
        return f"the string {json.dumps(item[:40])}"
    if isinstance(item, dict):
        twice = f" (with the key `{item.duplicate}` twice)" if getattr(item, "duplicate", None) else ""
        return "an object {...}" + twice
    if isinstance(item, list):
        return "an array"
    return f"`{item!r}`"


def _read_npz(fh, path, max_elements):
    head = fh.read(6)
    if head.startswith(_NPY_MAGIC):
        fail("E306", f"`{path}` is an .npy file: it holds one array, without a name",
             help=(f"give it to one value with --set NAME={path}, or save several with numpy.savez",))
    if not head.startswith(_ZIP_MAGIC):
        fail("E306", f"`{path}` is neither an .npz archive nor a .json file",
             help=("save arrays with numpy.savez(path, x=..., y=...), or write a .json object "
                   "mapping names to arrays",))
    fh.seek(0)
    with _npz_errors(path):
        archive = np.load(fh, allow_pickle=False)
    with archive:
        members = archive.zip.namelist()
        sizes = {}
        for name in archive.files:
            with _npz_errors(path, name), archive.zip.open(name if name in members else name + ".npy") as member:
                sizes[name] = _check_header(member, path, name, max_elements, in_archive=True)
        _check_total(path, sizes, max_elements)
        values = {}
        for name in archive.files:
            with _npz_errors(path, name):
                values[name] = np.asarray(archive[name], dtype=np.float64)
        return values


@contextlib.contextmanager
def _npz_errors(path, name=None):
    """What zipfile and numpy raise for a damaged archive, as E306 naming the file and the entry."""
    import zipfile  # here: np.load imports it for an archive; a command reading .json never needs it (7 ms)
    try:
        yield
    except GraphDSLError:  # ours: a ValueError too, so let it through
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, NotImplementedError) as err:
        what = f"`{name}` in `{path}`" if name else f"`{path}`"
        fail("E306", f"cannot read {what}: {short(err)}",
             help=("use an .npz of numeric arrays (pickled objects are refused) or a .json file",))


def _load_npy(path, name, max_elements):
    with _open_regular(path) as fh:
        try:
            _check_header(fh, path, name, max_elements)
            fh.seek(0)  # numpy reads the header again
            return np.asarray(np.load(fh, allow_pickle=False), dtype=np.float64)
        except GraphDSLError:  # ours: a ValueError too, so let it through
            raise
        except (OSError, ValueError, EOFError) as err:
            fail("E306", f"cannot read `{path}` for `{name}`: {short(err)}",
                 help=("files are read without pickle: save plain numeric arrays",))


def _check_header(fh, path, name, max_elements, in_archive=False) -> int:
    """The array's element count, from its header: refused if too large or not numbers, before it is read."""
    if fh.read(6) != _NPY_MAGIC:  # numpy would read any other archive member whole, as bytes
        fail("E306", f"`{name}` in `{path}` is not an .npy array" if in_archive else f"`{path}` is not an .npy file",
             help=("save arrays with numpy.save, or several in an .npz with numpy.savez",))
    major = fh.read(2)[:1]
    read = np.lib.format.read_array_header_1_0 if major == b"\x01" else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(fh)
    if dtype.hasobject:
        fail("E306", f"cannot read `{name}` from `{path}`: it holds Python objects, which are refused "
                     "(they would need pickle)", help=("save plain numeric arrays",))
    if dtype.kind not in _NUMERIC_KINDS:
        fail("E306", f"`{name}` in `{path}` holds {_dtype_words(dtype)} (dtype {dtype}); graphdsl values are "
                     "real numbers", help=("save bool, integer or float arrays",))
    count = math.prod(shape)
    if count > max_elements:
        fail("E303", f"`{name}` in `{path}` has {count:,} elements {list(shape)}, more than the "
                     f"limit of {max_elements:,}", help=("use smaller data, or raise --max-elements",))
    return count


def _dtype_words(dtype) -> str:
    return {"c": "complex numbers", "M": "dates and times", "m": "time spans", "S": "bytes",
            "U": "strings", "V": "structured records"}.get(dtype.kind, "values that are not numbers")


def _check_total(path, sizes: dict, max_elements):
    """One file's arrays together are bounded as one array is: a small archive must not fill memory."""
    total = sum(sizes.values())
    if total > max_elements:
        fail("E303", f"the arrays in `{path}` hold {total:,} elements together, more than the limit of "
                     f"{max_elements:,}", help=("use smaller data, or raise --max-elements",))


def short(err) -> str:
    """An exception's text, cut to a length that fits in a diagnostic."""
    text = str(err)
    return text if len(text) < 200 else text[:200] + "..."
