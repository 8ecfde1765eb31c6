"""Printer and lark parser for the text form of a graph (`lbc compile --emit ir`).

The text form round-trips exactly: constants are printed in full (floats with the shortest decimal
that reads back to the same float32), and `parse(print(g))` prints identically.
"""

import json
from pathlib import Path

import numpy as np
from lark import Lark, Transformer, v_args
from lark.exceptions import LarkError

from lbc.errors import SourceError
from lbc.ir.dtypes import dtype
from lbc.ir.graph import Graph, Node, TensorType

_IDENT_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _q(s):
    return json.dumps(s)


def _ref(name):
    if name and name[0].isalpha() and set(name) <= _IDENT_OK:
        return "%" + name
    return "%" + _q(name)


def _num(v):
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    f = float(v)
    if np.isnan(f):
        return "nan"
    if np.isinf(f):
        return "inf" if f > 0 else "-inf"
    r = repr(f)
    return r if any(c in r for c in ".e") else r + ".0"


def _value(v):
    if isinstance(v, str):
        return _q(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return _num(v)


def _decl(name, t):
    s = f"{_ref(name)} : {t.dtype.name}[{', '.join(str(d) for d in t.shape)}]"
    return s + (f" exp {t.exp}" if t.exp is not None else "")


def print_graph(g):
    lines = [f"graph {_q(g.name)}"]
    for name in g.inputs:
        lines.append(f"input {_decl(name, g.types[name])}")
    for name in sorted(g.consts):
        arr = g.consts[name]
        vals = ", ".join(_num(v) for v in arr.reshape(-1).tolist())
        lines.append(f"const {_decl(name, g.types[name])} = [{vals}]")
    for name, st in g.states.items():
        vals = ", ".join(_num(v) for v in st.init.reshape(-1).tolist())
        lines.append(f"state {_decl(name, g.types[name])} = [{vals}] next {_ref(st.next)}")
    for n in g.nodes:
        outs = ", ".join(_decl(o, g.types[o]) for o in n.outputs)
        ins = ", ".join(_ref(i) for i in n.inputs)
        attrs = ", ".join(f"{k} = {_value(n.attrs[k])}" for k in sorted(n.attrs))
        lines.append(f"{outs} = {n.op}({ins}) {_q(n.name)}" + (f" {{{attrs}}}" if attrs else ""))
    for o in g.outputs:
        lines.append(f"output {_ref(o)}")
    for k in sorted(g.meta):
        lines.append(f"meta {_q(k)} = {json.dumps(g.meta[k], sort_keys=True)}")
    return "\n".join(lines) + "\n"


_PARSER = Lark(Path(__file__).with_name("text.lark").read_text(), parser="lalr", propagate_positions=True)


@v_args(inline=True)
class _Build(Transformer):
    def STRING(self, tok):
        return json.loads(tok)

    def INT(self, tok):
        return int(tok)

    def SIGNED_INT(self, tok):
        return int(tok)

    def int(self, v):
        return v

    def float(self, tok):
        return float(tok)

    def string(self, s):
        return s

    def list(self, *items):
        return tuple(i for i in items if i is not None)

    def attr(self, name, value):
        return str(name), value

    def attrs(self, *items):
        return dict(i for i in items if i is not None)


def parse_graph(text, filename="<ir>"):
    try:
        tree = _PARSER.parse(text)
    except LarkError as e:
        line, col = getattr(e, "line", 0), getattr(e, "column", 0)
        src = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else None
        raise SourceError(f"IR syntax error: {str(e).splitlines()[0]}", filename, line, col, src) from None
    g = Graph("", [], [], [], {})
    for st in tree.children:
        _statement(g, st)
    return g


def _decl_of(tree):
    """tensor_decl -> (name, TensorType). Children: ref, NAME, INT*, [SIGNED_INT exp]."""
    ref, dt, *rest = tree.children
    name = json.loads(ref.children[0]) if ref.children[0].type == "STRING" else str(ref.children[0])
    dims, exp = [], None
    for tok in rest:
        if tok is None:
            continue
        if tok.type == "INT":
            dims.append(int(tok))
        else:
            exp = int(tok)
    return name, TensorType(dtype(str(dt)), tuple(dims), exp)


def _ref_of(tree):
    tok = tree.children[0]
    return json.loads(tok) if tok.type == "STRING" else str(tok)


_VALUES = _Build()


def _statement(g, st):
    kind = st.data
    if kind == "header":
        g.name = json.loads(st.children[0])
    elif kind == "input":
        name, t = _decl_of(st.children[0])
        g.inputs.append(name)
        g.types[name] = t
    elif kind == "const":
        name, t = _decl_of(st.children[0])
        vals = _VALUES.transform(st.children[1])
        arr = np.array(vals, dtype=t.dtype.numpy).reshape(t.shape)
        arr.setflags(write=False)
        g.consts[name] = arr
        g.types[name] = t
    elif kind == "state":
        name, t = _decl_of(st.children[0])
        vals = _VALUES.transform(st.children[1])
        g.add_state(name, t, np.array(vals, dtype=t.dtype.numpy).reshape(t.shape[1:]), _ref_of(st.children[2]))
    elif kind == "node":
        decls = [c for c in st.children if getattr(c, "data", None) == "tensor_decl"]
        rest = [c for c in st.children if getattr(c, "data", None) != "tensor_decl"]
        op, *rest = rest
        refs = [_ref_of(c) for c in rest if getattr(c, "data", None) == "ref"]
        node_name = next(json.loads(c) for c in rest if getattr(c, "type", None) == "STRING")
        attr_tree = next((c for c in rest if getattr(c, "data", None) == "attrs"), None)
        attrs = _VALUES.transform(attr_tree) if attr_tree is not None else {}
        outs = []
        for d in decls:
            name, t = _decl_of(d)
            g.types[name] = t
            outs.append(name)
        g.nodes.append(Node(str(op), node_name, refs, outs, attrs))
    elif kind == "output":
        g.outputs.append(_ref_of(st.children[0]))
    elif kind == "meta":
        g.meta[json.loads(st.children[0])] = json.loads(st.children[1])
