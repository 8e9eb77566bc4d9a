"""A small ONNX node writer for the ops baked around a package's model, valid at the model's own opset.

Every op is written so that it means the same from opset 10 on (reductions take ``axes`` as an
attribute below opset 18 and as an input from 18; squeezing is done with Reshape; clipping with
Max/Min), so the pipeline's opset conversion can move the finished graph to the spec's opset.
Shapes are read at run time (Shape, Size), so one graph serves every tile size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from czann_ci.naming import unique_name

if TYPE_CHECKING:
    import onnx

MIN_OPSET = 10  # TopK takes k as an input from opset 10 on


class OpWriter:
    """Appends nodes and constants to lists; the caller places them in a graph."""

    def __init__(self, opset: int, taken: set[str], prefix: str = "czann_bio") -> None:
        self.opset = opset
        self.taken = taken
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def name(self, base: str) -> str:
        return unique_name(f"{self.prefix}_{base}", self.taken)

    def const(self, value: Any, dtype: str = "float32", base: str = "const") -> str:
        import numpy as np
        from onnx import numpy_helper

        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attributes: Any) -> str:
        from onnx import helper

        out = output or self.name(op_type.lower())
        self.nodes.append(
            helper.make_node(op_type, list(inputs), [out], name=self.name(op_type), **attributes)
        )
        return out

    # --- ops whose form changed between opsets -----------------------------------------------------

    def reduce(self, op_type: str, x: str, axes: Sequence[int], output: str | None = None) -> str:
        """ReduceMean/ReduceMax/ReduceSum over ``axes`` keeping them (size 1)."""
        axes_as_input = self.opset >= 18 or (op_type == "ReduceSum" and self.opset >= 13)
        if axes_as_input:
            return self.op(op_type, x, self.const(list(axes), "int64", "axes"), output=output, keepdims=1)
        return self.op(op_type, x, output=output, axes=list(axes), keepdims=1)

    def cast(self, x: str, dtype: str, output: str | None = None) -> str:
        from onnx import helper

        return self.op("Cast", x, output=output, to=helper.np_dtype_to_tensor_dtype(_np_dtype(dtype)))

    # --- composite helpers -------------------------------------------------------------------------

    def binary(self, op_type: str, x: str, value: Any, output: str | None = None) -> str:
        return self.op(op_type, x, self.const(value), output=output)

    def mean_std(self, x: str, axes: Sequence[int]) -> tuple[str, str]:
        """Mean and population standard deviation (divided by n, as bioimage.io computes it)."""
        mean = self.reduce("ReduceMean", x, axes)
        centred = self.op("Sub", x, mean)
        variance = self.reduce("ReduceMean", self.op("Mul", centred, centred), axes)
        return mean, self.op("Sqrt", variance)

    def quantile(self, x: str, q: float, axes: Sequence[int], rank: int, method: str) -> str:
        """The ``q`` quantile of ``x`` over ``axes`` (numpy's ``linear`` or ``inverted_cdf``), kept
        broadcastable: the reduced axes have size 1.

        Only the elements up to the wanted position are sorted (TopK from the nearer end).
        """
        kept = [i for i in range(rank) if i not in axes]
        reduced = [i for i in range(rank) if i in axes]
        shape = self.op("Shape", x)
        kept_dims = (
            self.op("Gather", shape, self.const(kept, "int64"), axis=0) if kept else self.const([1], "int64")
        )
        flat = self.op(
            "Reshape",
            self.op("Transpose", x, perm=kept + reduced),
            self.op("Concat", kept_dims, self.const([-1], "int64"), axis=0),
        )
        flat_rank = max(len(kept), 1) + 1
        count = self.cast(
            self.op("Gather", self.op("Shape", flat), self.const([flat_rank - 1], "int64"), axis=0), "float64"
        )
        last = self.binary_f64("Sub", count, 1.0)
        if method == "linear":
            position = self.op("Mul", self.const([q], "float64"), last)
        else:  # inverted_cdf: element ceil(q * n) - 1, at least the first
            first = self.op("Ceil", self.op("Mul", self.const([q], "float64"), count))
            position = self.op("Max", self.binary_f64("Sub", first, 1.0), self.const([0.0], "float64"))
        low = self.op("Floor", position)
        high = self.op("Min", self.binary_f64("Add", low, 1.0), last)
        fraction = self.cast(self.op("Sub", position, low), "float32")
        if q < 0.5:  # the smallest k elements, ascending: TopK of -x
            k = self.cast(self.binary_f64("Add", high, 1.0), "int64")
            ascending = self.op("Neg", self._topk(self.op("Neg", flat), k, flat_rank - 1))
            index_low, index_high = self.cast(low, "int64"), self.cast(high, "int64")
            values = ascending
        else:  # the largest k elements, descending
            k = self.cast(self.op("Sub", count, low), "int64")
            values = self._topk(flat, k, flat_rank - 1)
            index_low = self.cast(self.op("Sub", last, low), "int64")
            index_high = self.cast(self.op("Sub", last, high), "int64")
        value_low = self.op("Gather", values, index_low, axis=flat_rank - 1)
        value_high = self.op("Gather", values, index_high, axis=flat_rank - 1)
        value = value_low
        if method == "linear":
            value = self.op("Add", value_low, self.op("Mul", self.op("Sub", value_high, value_low), fraction))
        pieces = [
            self.op("Gather", shape, self.const([i], "int64"), axis=0)
            if i in kept
            else self.const([1], "int64")
            for i in range(rank)
        ]
        broadcast = self.op("Concat", *pieces, axis=0) if len(pieces) > 1 else pieces[0]
        return self.op("Reshape", value, broadcast)

    def binary_f64(self, op_type: str, x: str, value: float) -> str:
        return self.op(op_type, x, self.const([value], "float64"))

    def _topk(self, x: str, k: str, axis: int) -> str:
        from onnx import helper

        values, indices = self.name("topk_values"), self.name("topk_indices")
        self.nodes.append(
            helper.make_node("TopK", [x, k], [values, indices], name=self.name("TopK"), axis=axis)
        )
        return values


def _np_dtype(dtype: str) -> Any:
    import numpy as np

    return np.dtype("bool" if dtype == "bool" else dtype)
