"""The ONNX graph under construction: nodes, constants, and shapes that may hold free dims.

`OnnxGraph` is what every builder of onnx_ops.py writes with: `node(...)` adds
one ONNX node and returns its output's name, `const(...)` a constant of the
export's float type, `ints(...)` an int64 one. A free dim (`dim b`, bound by the
data) is read at run time from the input that binds it (`dim(name)`), so an
exported model takes any batch size; `shape_tensor` and `size` build a shape or
a scalar size from ints and `DimRef`s. While a step is built, `arg_shapes` and
`out_shape` hold its operands' and result's symbolic shapes (ints and DimRefs).
"""
from __future__ import annotations

import numpy as np

from .schedule import DimRef

# The opset the exporter writes: 18 takes reduction axes as inputs for every Reduce op.
OPSET = 18


class FixedSize(Exception):
    """A step folds a free dim's size into a fixed length (slicing, padding or concatenating along its
    axis, merging it into another axis, a window over it): the graph after it holds that length as a
    number, so the exporter fixes the dim at the data's size (onnx_export.export)."""

    def __init__(self, dim: str):
        super().__init__(dim)
        self.dim = dim


def refuse_free(*sizes):
    """FixedSize for the first free dim (DimRef) among `sizes`."""
    for d in sizes:
        if isinstance(d, DimRef):
            raise FixedSize(d.name)


class OnnxGraph:
    def __init__(self, onnx, dtype: str, dim_sources: dict):
        self.onnx = onnx
        self.np_dtype = np.dtype(dtype)
        self.elem = onnx.helper.np_dtype_to_tensor_dtype(self.np_dtype)
        self.dim_sources = dim_sources  # dim name -> (input tensor name, axis)
        self.nodes: list = []
        self.initializers: list = []
        self.arg_shapes: list = []
        self.out_shape: tuple = ()
        self._taken: set = set()
        self._consts: dict = {}
        self._dims: dict = {}
        self.prefix = "t"

    # ---- names and nodes ----------------------------------------------------------------
    def reserve(self, name: str) -> str:
        self._taken.add(name)
        return name

    def fresh(self, hint: str) -> str:
        base = f"{self.prefix}.{hint}"
        name, k = base, 1
        while name in self._taken:
            k += 1
            name = f"{base}.{k}"
        return self.reserve(name)

    def node(self, op_type: str, inputs, outputs: int = 1, name: str | None = None, **attrs):
        """Add one node; its output name (a list of them when outputs > 1)."""
        outs = [name] if name and outputs == 1 else [self.fresh(op_type) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), outs, name=outs[0], **attrs))
        return outs[0] if outputs == 1 else outs

    def is_shared(self, tensor: str) -> bool:
        """A tensor later steps read too (a free dim's size), which no step may rename."""
        return tensor in self._dims.values()

    def rename(self, tensor: str, name: str) -> str:
        """`tensor` under the name `name` (an Identity node: graph outputs keep the model's names)."""
        return self.node("Identity", [tensor], name=name)

    # ---- constants -------------------------------------------------------------------------
    def const(self, value) -> str:
        """A constant in the export's float type (an initializer, shared by equal values)."""
        return self._constant(np.asarray(value, dtype=self.np_dtype), "c")

    def ints(self, values) -> str:
        """An int64 constant: a 1-D tensor for a list, a scalar for an int."""
        return self._constant(np.asarray(values, dtype=np.int64), "i")

    def _constant(self, array: np.ndarray, hint: str) -> str:
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            name = self.fresh(hint)
            self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
            self._consts[key] = name
        return self._consts[key]

    def cast(self, tensor: str) -> str:
        """A bool or integer tensor in the export's float type."""
        return self.node("Cast", [tensor], to=self.elem)

    def full(self, shape, value: float) -> str:
        """An array of `shape` (ints and DimRefs) filled with `value`."""
        if all(isinstance(d, int) for d in shape):
            return self.const(np.full(tuple(shape), value))
        return self.node("ConstantOfShape", [self.shape_tensor(shape)], value=self.fill(value))

    def expand(self, x: str, shape) -> str:
        """x broadcast to `shape` (ints and DimRefs)."""
        if any(d == 0 for d in shape):  # empty: onnxruntime's Expand gives size 1 for a 0 in the shape
            return self.full(shape, 0.0)
        return self.node("Expand", [x, self.shape_tensor(shape)])

    def fill(self, value: float):
        """ConstantOfShape's `value=`: one element of the export's float type."""
        return self.onnx.numpy_helper.from_array(np.asarray([value], dtype=self.np_dtype))

    # ---- free dims ---------------------------------------------------------------------------
    def dim(self, name: str) -> str:
        """A free dim's size as an int64 tensor of one element, read from the input that binds it."""
        if name not in self._dims:
            source = self.dim_sources.get(name)
            if source is None:
                raise KeyError(name)  # the exporter resolves dims no input binds before building
            tensor, axis = source
            self._dims[name] = self.node("Shape", [tensor], start=axis, end=axis + 1)
        return self._dims[name]

    def shape_tensor(self, shape) -> str:
        """An int64 1-D tensor of `shape`; ints become constants, DimRefs their run-time sizes."""
        if all(not isinstance(d, DimRef) for d in shape):
            return self.ints([int(d) for d in shape])
        parts, run = [], []
        for d in shape:
            if isinstance(d, DimRef):
                if run:
                    parts.append(self.ints(run))
                    run = []
                parts.append(self.dim(d.name))
            else:
                run.append(int(d))
        if run:
            parts.append(self.ints(run))
        return parts[0] if len(parts) == 1 else self.node("Concat", parts, axis=0)

    def size(self, value) -> str:
        """A size (an int or a DimRef) as a scalar of the export's float type."""
        if not isinstance(value, DimRef):
            return self.const(float(value))
        return self.cast(self.node("Squeeze", [self.dim(value.name)]))

    def count(self, shape, axes) -> str:
        """The number of elements over `axes` of `shape`, as a float scalar."""
        sizes = [shape[a] for a in axes]
        static = float(np.prod([d for d in sizes if not isinstance(d, DimRef)]))
        total = self.const(static)
        for d in sizes:
            if isinstance(d, DimRef):
                total = self.node("Mul", [total, self.size(d)])
        return total

    def rank(self, i: int = 0) -> int:
        return len(self.arg_shapes[i])
