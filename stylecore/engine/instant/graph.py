"""Edits of the instant transform graph (onnx protobufs), made once per engine in memory.

The published graph declares a fixed 384x384 input but is fully convolutional: naming its height
and width symbolic lets it run at the layer's own size. Its 13 style-normalisation layers take
the mean and variance of the whole picture (GlobalAveragePool), so tiles painted on their own
would each get their own statistics and meet at seams; the `stats` graph returns those 26
values, and the `tiled` graph takes them as inputs instead of computing them per tile.
"""

from __future__ import annotations

from typing import Any

ModelProto = Any  # onnx.ModelProto; onnx is imported only when the instant preset runs


def symbolic(model: ModelProto) -> ModelProto:
    """The same model with height and width (NHWC axes 1 and 2) of its image input and output left open."""
    for value in (model.graph.input[0], model.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        for axis, name in ((1, "height"), (2, "width")):
            dims[axis].ClearField("dim_value")
            dims[axis].dim_param = name
    del model.graph.value_info[:]
    return model


def moment_names(model: ModelProto) -> list[str]:
    """The outputs of the whole-picture averages, in graph order."""
    return [node.output[0] for node in model.graph.node if node.op_type == "GlobalAveragePool"]


def stats(model: ModelProto) -> ModelProto:
    """A copy whose outputs are the picture's normalisation moments (and no picture)."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.output[:]
    out.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in moment_names(model)
    )
    return out


def tiled(model: ModelProto) -> ModelProto:
    """A copy that takes the normalisation moments as inputs (1xCx1x1 each) instead of averaging the tile."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    names = set(moment_names(model))
    kept = [node for node in out.graph.node if not (node.op_type == "GlobalAveragePool" and node.output[0] in names)]
    del out.graph.node[:]
    out.graph.node.extend(kept)
    out.graph.input.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [1, None, 1, 1]) for name in moment_names(model)
    )
    return out


def dequantized(model: ModelProto) -> ModelProto:
    """The model in float32: int8 weights dequantised once, every activation quantize/dequantize dropped.

    The int8 activations make the output jump at the level of invisible input changes (a 1e-4
    perturbation of a resized photo moves it by 0.036 on average); without them the network is smooth, so tiles
    painted apart agree with the whole picture, and it runs faster on CPUs."""
    import onnx
    from onnx import numpy_helper

    consts = {t.name: t for t in model.graph.initializer}
    alias: dict[str, str] = {}  # a dropped node's output -> the float tensor that replaces it
    folded = []
    kept = []
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in consts:
            folded.append(numpy_helper.from_array(_dequantize(node, consts), node.output[0]))
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            alias[node.output[0]] = alias.get(node.input[0], node.input[0])
        else:
            kept.append(node)
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = alias.get(name, name)
    for value in model.graph.output:  # an output produced by a dropped node keeps its name
        if value.name in alias:
            kept.append(onnx.helper.make_node("Identity", [alias[value.name]], [value.name]))
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(kept)
    used = {name for node in kept for name in node.input}
    del out.graph.initializer[:]
    out.graph.initializer.extend(t for t in [*model.graph.initializer, *folded] if t.name in used)
    return out


def _dequantize(node: Any, consts: dict[str, Any]) -> Any:
    import numpy as np
    from onnx import numpy_helper

    q, scale = (numpy_helper.to_array(consts[name]).astype(np.float32) for name in node.input[:2])
    zero = numpy_helper.to_array(consts[node.input[2]]).astype(np.float32) if len(node.input) > 2 else np.float32(0)
    if scale.ndim == 1 and q.ndim > 1:  # per channel: broadcast along the quantised axis
        shape = [1] * q.ndim
        shape[next((a.i for a in node.attribute if a.name == "axis"), 1)] = -1
        scale = scale.reshape(shape)
        zero = zero.reshape(shape) if np.ndim(zero) else zero
    return ((q - zero) * scale).astype(np.float32)
