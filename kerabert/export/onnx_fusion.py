"""Rewrite tf2onnx's BERT graph into the standard ONNX forms that runtimes fuse.

tf2onnx lowers Keras's layer normalization into a dozen element-wise nodes
(`GlobalAveragePool` means, `Neg`, `Sqrt`, `Reciprocal` and the folded
`x * g + (beta - mean * g)`), the exact GELU into `Erf` of a negated input, and the
attention projections into `Gemm` with a transposed weight. onnxruntime's own fusions
match none of these, and its dynamic quantization skips `Gemm`, so on the 2-core
benchmark machine element-wise nodes took a third of an int8 forward pass and the
float `Gemm`s another third (`docs/benchmarks/export.md`). This pass rewrites:

- each layer normalization into one `LayerNormalization` (ONNX opset 17);
- each GELU into `0.5 * x * (1 + Erf(x / sqrt(2)))`, the form onnxruntime fuses into
  its `Gelu` kernel;
- each bias-free `Gemm` on a constant weight into `MatMul` (transposed constant), which
  dynamic int8 quantization covers.

Every rewrite is exact up to float rounding, matches only what it fully recognises
(anything else is left as tf2onnx wrote it), and the graph stays standard ONNX.
"""

from __future__ import annotations

import math

import numpy as np


class _Graph:
    """Producer/consumer indexes over an `onnx.GraphProto`."""

    def __init__(self, graph):
        from onnx import numpy_helper

        self.graph = graph
        self.constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers = {}
        for node in graph.node:
            for name in dict.fromkeys(node.input):  # a node reading one tensor twice counts once
                self.consumers.setdefault(name, []).append(node)
        self.outputs = {o.name for o in graph.output}
        self.removed = set()
        self.counter = 0

    def constant(self, name):
        value = self.constants.get(name)
        if value is None and name in self.producer and self.producer[name].op_type == "Constant":
            from onnx import numpy_helper

            attribute = self.producer[name].attribute[0]
            if attribute.name == "value":
                value = numpy_helper.to_array(attribute.t)
        return value

    def users(self, name):
        return [n for n in self.consumers.get(name, []) if id(n) not in self.removed]

    def only_user(self, name, op_type):
        users = self.users(name)
        if len(users) == 1 and users[0].op_type == op_type and name not in self.outputs:
            return users[0]
        return None

    def other_input(self, node, name):
        rest = [i for i in node.input if i != name]
        return rest[0] if len(rest) == 1 and len(node.input) == 2 else None

    def add_constant(self, value, stem):
        from onnx import numpy_helper

        self.counter += 1
        name = f"kerabert_fusion/{stem}_{self.counter}"
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        self.constants[name] = np.asarray(value)
        return name

    def remove(self, nodes):
        self.removed.update(id(n) for n in nodes)

    def finish(self, inserted):
        """Drop removed nodes and put each inserted node where its first removed node was."""
        kept = []
        for node in self.graph.node:
            if id(node) in inserted:
                kept.extend(inserted[id(node)])
            if id(node) not in self.removed:
                kept.append(node)
        del self.graph.node[:]
        self.graph.node.extend(kept)


def _scalar(value):
    return value is not None and value.size == 1


def _layer_norms(g, inserted):
    """mean = GAP(x); d = x - mean; var = GAP(d * d); r = 1 / sqrt(var + eps);
    s = r * gamma; out = x * s + (beta + (-mean) * s)  ->  LayerNormalization(x)."""
    from onnx import helper

    count = 0
    for mean in list(g.graph.node):
        # tf2onnx writes the means as GlobalAveragePool (its global_pool_optimizer).
        if mean.op_type != "GlobalAveragePool" or id(mean) in g.removed:
            continue
        x, m = mean.input[0], mean.output[0]
        users = g.users(m)
        sub = next((n for n in users if n.op_type == "Sub" and list(n.input) == [x, m]), None)
        neg = next((n for n in users if n.op_type == "Neg"), None)
        if sub is None or neg is None or len(users) != 2:
            continue
        square = g.only_user(sub.output[0], "Mul")
        if square is None or list(square.input) != [sub.output[0]] * 2:
            continue
        variance = g.only_user(square.output[0], "GlobalAveragePool")
        if variance is None:
            continue
        add_eps = g.only_user(variance.output[0], "Add")
        eps = add_eps and g.constant(g.other_input(add_eps, variance.output[0]))
        if add_eps is None or not _scalar(eps):
            continue
        sqrt = g.only_user(add_eps.output[0], "Sqrt")
        reciprocal = sqrt and g.only_user(sqrt.output[0], "Reciprocal")
        scale = reciprocal and g.only_user(reciprocal.output[0], "Mul")
        if scale is None:
            continue
        gamma = g.constant(g.other_input(scale, reciprocal.output[0]))
        scale_users = g.users(scale.output[0])
        if gamma is None or len(scale_users) != 2:
            continue
        times_x = next((n for n in scale_users if n.op_type == "Mul"
                        and g.other_input(n, scale.output[0]) == x), None)
        times_mean = next((n for n in scale_users if n.op_type == "Mul"
                           and g.other_input(n, scale.output[0]) == neg.output[0]), None)
        if times_x is None or times_mean is None or g.users(neg.output[0]) != [times_mean]:
            continue
        shift = g.only_user(times_mean.output[0], "Add")
        beta = shift and g.constant(g.other_input(shift, times_mean.output[0]))
        out = shift and g.only_user(shift.output[0], "Add")
        if beta is None or out is None or sorted(out.input) != sorted(
                [times_x.output[0], shift.output[0]]) or g.users(times_x.output[0]) != [out]:
            continue
        width = gamma.size
        if beta.size != width or gamma.shape[-1:] != (width,) or beta.shape[-1:] != (width,):
            continue
        node = helper.make_node(
            "LayerNormalization",
            [x, g.add_constant(gamma.reshape(width).astype(np.float32), "gamma"),
             g.add_constant(beta.reshape(width).astype(np.float32), "beta")],
            # GlobalAveragePool averages over every axis from 2 on, as LayerNormalization
            # with axis=2 normalizes: the same for any rank.
            [out.output[0]], axis=2, epsilon=float(eps.reshape(())),
            name=f"kerabert_fusion/LayerNormalization_{count}")
        group = [mean, neg, sub, square, variance, add_eps, sqrt, reciprocal, scale, times_x,
                 times_mean, shift, out]
        g.remove(group)
        inserted[id(mean)] = [node]
        count += 1
    return count


def _gelus(g, inserted):
    """half = c * x; z = Erf(-x * k); out = half * (1 - z), with c = 0.5, k = 1/sqrt(2)
    ->  0.5 * x * (1 + Erf(x / sqrt(2)))."""
    from onnx import helper

    count = 0
    for erf in list(g.graph.node):
        if erf.op_type != "Erf" or id(erf) in g.removed:
            continue
        scaled = g.producer.get(erf.input[0])
        if scaled is None or scaled.op_type != "Mul" or g.users(scaled.output[0]) != [erf]:
            continue
        negated = next((g.producer[i] for i in scaled.input if i in g.producer
                        and g.producer[i].op_type == "Neg"), None)
        if negated is None or g.users(negated.output[0]) != [scaled]:
            continue
        k = g.constant(g.other_input(scaled, negated.output[0]))
        x = negated.input[0]
        complement = g.only_user(erf.output[0], "Sub")
        one = complement and g.constant(complement.input[0])
        if not (_scalar(k) and abs(float(k.reshape(())) - 1 / math.sqrt(2)) < 1e-6
                and complement is not None and complement.input[1] == erf.output[0]
                and _scalar(one) and float(one.reshape(())) == 1.0):
            continue
        out = g.only_user(complement.output[0], "Mul")
        if out is None:
            continue
        half = g.producer.get(g.other_input(out, complement.output[0]))
        if half is None or half.op_type != "Mul" or g.users(half.output[0]) != [out]:
            continue
        c = g.constant(g.other_input(half, x))
        if not (_scalar(c) and float(c.reshape(())) == 0.5):
            continue
        name = f"kerabert_fusion/Gelu_{count}"
        nodes = [
            helper.make_node("Div", [x, g.add_constant(np.float32(math.sqrt(2)), "sqrt2")],
                             [name + "/div"], name=name + "/Div"),
            helper.make_node("Erf", [name + "/div"], [name + "/erf"], name=name + "/Erf"),
            helper.make_node("Add", [name + "/erf", g.add_constant(np.float32(1), "one")],
                             [name + "/add"], name=name + "/Add"),
            helper.make_node("Mul", [x, name + "/add"], [name + "/mul"], name=name + "/Mul"),
            helper.make_node("Mul", [name + "/mul", g.add_constant(np.float32(0.5), "half")],
                             [out.output[0]], name=name + "/Mul_1"),
        ]
        g.remove([negated, scaled, erf, complement, half, out])
        first = next(n for n in g.graph.node if id(n) in (id(half), id(negated)))
        inserted[id(first)] = nodes
        count += 1
    return count


def _gemms(g, inserted):
    """Bias-free `Gemm(A, B)` with a constant B (alpha 1) -> `MatMul(A, B or B^T)`."""
    from onnx import helper

    count = 0
    for gemm in list(g.graph.node):
        if gemm.op_type != "Gemm" or len(gemm.input) > 2 and gemm.input[2]:
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in gemm.attribute}
        weight = g.constant(gemm.input[1])
        if weight is None or weight.ndim != 2 or attributes.get("transA", 0) or \
                attributes.get("alpha", 1.0) != 1.0:
            continue
        if attributes.get("transB", 0):
            weight = np.ascontiguousarray(weight.T)
        node = helper.make_node("MatMul", [gemm.input[0], g.add_constant(weight, "weight")],
                                list(gemm.output), name=f"kerabert_fusion/MatMul_{count}")
        g.remove([gemm])
        inserted[id(gemm)] = [node]
        count += 1
    return count


def fuse(proto):
    """Rewrite `proto` (an `onnx.ModelProto`) in place; returns the rewrite counts."""
    counts = {}
    for name, rewrite in (("layer_norms", _layer_norms), ("gelus", _gelus),
                          ("gemms", _gemms)):
        graph = _Graph(proto.graph)
        inserted = {}
        counts[name] = rewrite(graph, inserted)
        graph.finish(inserted)
    _drop_unused_initializers(proto.graph)
    return counts


def _drop_unused_initializers(graph):
    used = {name for node in graph.node for name in node.input}
    used |= {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
