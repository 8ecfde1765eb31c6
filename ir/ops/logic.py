"""Masks: comparisons that make bool tensors, boolean logic on them, and `where` that selects by them.

Bool tensors (dtype `bool`, one byte per value, 0 or 1) are never quantised: they are the same in
float and integer graphs. All ops broadcast like numpy (ONNX multidirectional broadcasting).

Integer semantics: int8 operands with different exps are compared exactly after aligning both to
the larger exp with left shifts, (a << sa) OP (b << sb); `where` aligns its two value operands the
same way, selects, and requantises to the output exp.
"""

import numpy as np

from lbc.ir.ops.base import INT_REQ, as_f32, broadcast_infer, req, op

ALIGN = {"sa": 0, "sb": 0}


def _aligned(node, a, b):
    return a.astype(np.int64) << node.attr("sa"), b.astype(np.int64) << node.attr("sb")


def _comparison(name, fn, text):
    def float_fn(node, a):
        return [fn(a[0], a[1])]

    def int_fn(node, a):
        return [fn(*_aligned(node, a[0], a[1]))]

    cls = type(name, (), {"infer": staticmethod(broadcast_infer), "float_fn": staticmethod(float_fn),
                          "int_fn": staticmethod(int_fn)})
    op(name, (2, 2), ALIGN, int_attrs=tuple(ALIGN),
       doc=f"bool mask a {text} b; integer form: (a << sa) {text} (b << sb)")(cls)


_comparison("equal", np.equal, "==")
_comparison("less", np.less, "<")
_comparison("greater", np.greater, ">")
_comparison("greater_equal", np.greater_equal, ">=")
_comparison("less_equal", np.less_equal, "<=")


def _logic(name, arity, fn, text):
    def float_fn(node, a):
        return [fn(*a)]

    cls = type(name, (), {"infer": staticmethod(broadcast_infer), "float_fn": staticmethod(float_fn),
                          "int_fn": staticmethod(float_fn)})
    op(name, (arity, arity), doc=f"{text} of bool masks (identical in float and integer graphs)")(cls)


_logic("not", 1, np.logical_not, "logical not")
_logic("and", 2, np.logical_and, "logical and")
_logic("or", 2, np.logical_or, "logical or")


@op("where", (3, 3), {**ALIGN, **INT_REQ}, int_attrs=tuple(ALIGN) + tuple(INT_REQ),
    doc="cond ? a : b (broadcast; cond is a bool mask); integer form: requant(cond ? a << sa : b << sb)")
class Where:
    infer = staticmethod(broadcast_infer)

    @staticmethod
    def float_fn(node, a):
        return [as_f32(np.where(a[0], a[1], a[2]))]

    @staticmethod
    def int_fn(node, a):
        va, vb = _aligned(node, a[1], a[2])
        return [req(node, np.where(a[0], va, vb))]
