"""A small mutable view of an ONNX graph for pattern rewrites: who produces and who consumes each value,
constant values (initializers and Constant nodes), and node replacement with a topological re-sort.

Rewrites match structure and constant values, never node or tensor names, so they work on any export of
the same architecture (the names torch gives nodes change between exports and exporter versions).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import helper, numpy_helper

MS_DOMAIN = 'com.microsoft'
# ops whose output has the rank of their first input
_SAME_RANK = {'Transpose', 'Relu', 'Sigmoid', 'Tanh', 'Erf', 'Softmax', 'LayerNormalization', 'Cast', 'Slice', 'Split', 'Concat',
              'Conv', 'FastGelu', 'Gelu', 'QuickGelu', 'Identity', 'Neg', 'Sqrt', 'Exp', 'Cos', 'Sin', 'InstanceNormalization',
              'MultiHeadAttention', 'Resize', 'Clip'}


class QuantizeError(Exception):
    """A failure with a stable code (printed as `error CODE: message`), like core's GuidekitError."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Graph:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self.nodes: list[onnx.NodeProto] = list(self.graph.node)
        self.inits: dict[str, onnx.TensorProto] = {t.name: t for t in self.graph.initializer}
        self._names: set[str] = set(self.inits) | {o for n in self.nodes for o in n.output} | {n.name for n in self.nodes}
        self._counter = 0
        self._input_ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in self.graph.input if v.type.tensor_type.HasField('shape')}
        self.reindex()

    # ------------------------------------------------------------------------------------------ indices
    def reindex(self) -> None:
        self._ranks: dict[str, int | None] = {}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.users: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for n in self.nodes:
            for o in n.output:
                self.producer[o] = n
            for i in n.input:
                if i:
                    self.users[i].append(n)
        for o in self.graph.output:
            self.users[o.name].append(None)  # a graph output counts as a consumer that cannot be rewritten

    def consumers(self, name: str) -> list[onnx.NodeProto | None]:
        return self.users.get(name, [])

    def only_consumer(self, name: str) -> onnx.NodeProto | None:
        c = self.consumers(name)
        return c[0] if len(c) == 1 else None

    def src(self, node: onnx.NodeProto, i: int) -> onnx.NodeProto | None:
        return self.producer.get(node.input[i]) if i < len(node.input) else None

    def const(self, name: str) -> np.ndarray | None:
        """The value of `name` if it is an initializer or a Constant node's output, else None."""
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        n = self.producer.get(name)
        if n is not None and n.op_type == 'Constant' and n.domain in ('', 'ai.onnx'):
            for a in n.attribute:
                if a.name == 'value':
                    return numpy_helper.to_array(a.t)
        return None

    def scalar(self, name: str) -> float | None:
        v = self.const(name)
        return float(v.reshape(-1)[0]) if v is not None and v.size == 1 else None

    def rank(self, name: str, _depth: int = 0) -> int | None:
        """The rank of a value where the graph makes it evident (inputs, constants and the shape-preserving or
        shape-changing ops of exported transformers); None where it cannot tell."""
        if name in self._ranks:
            return self._ranks[name]
        value = self.const(name)
        r: int | None = None
        if value is not None:
            r = value.ndim
        elif name in self._input_ranks:
            r = self._input_ranks[name]
        elif name in self.producer and _depth < 200:
            n = self.producer[name]
            ins = [self.rank(i, _depth + 1) if i else None for i in n.input]
            attrs = {a.name: a for a in n.attribute}
            op = n.op_type
            if op in _SAME_RANK and ins and ins[0] is not None:
                r = ins[0]
            elif op in ('Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where') and all(x is not None for x in ins):
                r = max(ins)
            elif op in ('MatMul', 'FusedMatMul', 'DynamicQuantizeMatMul', 'MatMulInteger', 'MatMulIntegerToFloat') and None not in ins[:2]:
                r = max(ins[0], ins[1])
            elif op == 'Gemm':
                r = 2
            elif op == 'Unsqueeze' and ins[0] is not None:
                axes = self.const(n.input[1]) if len(n.input) > 1 else np.array(attrs['axes'].ints) if 'axes' in attrs else None
                r = ins[0] + axes.size if axes is not None else None
            elif op == 'Squeeze' and ins[0] is not None and (len(n.input) > 1 or 'axes' in attrs):
                axes = self.const(n.input[1]) if len(n.input) > 1 else np.array(attrs['axes'].ints)
                r = ins[0] - axes.size if axes is not None else None
            elif op == 'Reshape':
                r = self._vector_size(n.input[1])
            elif op == 'Gather' and None not in ins[:2]:
                r = ins[0] - 1 + ins[1]
            elif op == 'Shape':
                r = 1
        self._ranks[name] = r
        return r

    def _vector_size(self, name: str) -> int | None:
        """The length of a 1-D shape vector: a constant, Shape(x), Unsqueeze(scalar), Slice or Concat of those."""
        value = self.const(name)
        if value is not None:
            return value.size
        n = self.producer.get(name)
        if n is None:
            return None
        if n.op_type == 'Shape' and not n.attribute:
            return self.rank(n.input[0])
        if n.op_type == 'Unsqueeze' and self.rank(n.input[0]) == 0:
            return 1
        if n.op_type == 'Concat':
            sizes = [self._vector_size(i) for i in n.input]
            return sum(sizes) if None not in sizes else None
        if n.op_type == 'Slice' and len(n.input) >= 3:
            total, starts, ends = self._vector_size(n.input[0]), self.const(n.input[1]), self.const(n.input[2])
            steps = self.const(n.input[4]) if len(n.input) > 4 and n.input[4] else None
            if total is None or starts is None or ends is None or (steps is not None and int(steps.reshape(-1)[0]) != 1):
                return None
            s, e = (int(v.reshape(-1)[0]) for v in (starts, ends))
            s, e = (v + total if v < 0 else v for v in (s, e))
            return max(0, min(e, total) - max(s, 0))
        return None

    # ------------------------------------------------------------------------------------------ edits
    def fresh(self, prefix: str) -> str:
        while True:
            self._counter += 1
            name = f'{prefix}_q{self._counter}'
            if name not in self._names:
                self._names.add(name)
                return name

    def add_init(self, prefix: str, value: np.ndarray) -> str:
        name = self.fresh(prefix)
        self.inits[name] = numpy_helper.from_array(np.ascontiguousarray(value), name)
        return name

    def make(self, op: str, inputs: list[str], outputs: list[str] | int = 1, domain: str = '', **attrs) -> onnx.NodeProto:
        """A new node (not yet in the graph); `outputs` may be a count of fresh output names."""
        outs = [self.fresh(op.lower()) for _ in range(outputs)] if isinstance(outputs, int) else outputs
        return helper.make_node(op, inputs, outs, name=self.fresh(op), domain=domain, **attrs)

    def replace(self, remove: list[onnx.NodeProto], add: list[onnx.NodeProto]) -> None:
        """Drops `remove` and inserts `add`; call reindex() (or finish()) before matching again."""
        ids = {id(n) for n in remove}
        self.nodes = [n for n in self.nodes if id(n) not in ids] + add

    def dead_ends(self, nodes: list[onnx.NodeProto], keep: set[str]) -> bool:
        """True if every output of `nodes` is consumed only inside `nodes` or is in `keep`."""
        inside = {id(n) for n in nodes}
        for n in nodes:
            for o in n.output:
                if o in keep:
                    continue
                if any(c is None or id(c) not in inside for c in self.consumers(o)):
                    return False
        return True

    def finish(self) -> onnx.ModelProto:
        """Removes unused nodes and initializers, sorts topologically and writes back into the model."""
        by_output = {o: n for n in self.nodes for o in n.output}
        stack = [o.name for o in self.graph.output]
        seen_nodes: set[int] = set()
        while stack:
            name = stack.pop()
            n = by_output.get(name)
            if n is None or id(n) in seen_nodes:
                continue
            seen_nodes.add(id(n))
            stack.extend(i for i in n.input if i)
        order = topological([n for n in self.nodes if id(n) in seen_nodes], {i.name for i in self.graph.input} | set(self.inits))
        used = {i for n in order for i in n.input}
        del self.graph.node[:]
        self.graph.node.extend(order)
        del self.graph.initializer[:]
        self.graph.initializer.extend(t for name, t in self.inits.items() if name in used)
        del self.graph.value_info[:]  # stale after rewrites; ORT infers shapes itself
        if any(n.domain == MS_DOMAIN for n in order) and not any(o.domain == MS_DOMAIN for o in self.model.opset_import):
            self.model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
        self.nodes = order
        self.reindex()
        return self.model


def topological(nodes: list[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """Kahn's algorithm, stable with respect to the given order."""
    ready = set(available) | {''}
    waiting = defaultdict(list)
    missing = {}
    out: list[onnx.NodeProto] = []
    queue: list[onnx.NodeProto] = []
    for n in nodes:
        need = {i for i in n.input if i not in ready}  # produced by other nodes of the list
        missing[id(n)] = need
        if not need:
            queue.append(n)
        for i in need:
            waiting[i].append(n)
    produced = {o for n in nodes for o in n.output}
    for n in nodes:
        unknown = {i for i in missing[id(n)] if i not in produced}
        if unknown:
            raise QuantizeError('MODEL_INVALID', f'node {n.name or n.op_type} reads {sorted(unknown)}, which nothing produces: the input graph is not valid ONNX.')
    while queue:
        n = queue.pop(0)
        out.append(n)
        for o in n.output:
            for m in waiting.pop(o, []):
                missing[id(m)].discard(o)
                if not missing[id(m)]:
                    queue.append(m)
    if len(out) != len(nodes):
        raise QuantizeError('MODEL_INVALID', 'the graph has a cycle after rewriting; this is a bug in tooling/quantize, please report it with the input model.')
    return out
