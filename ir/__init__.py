"""The lbc intermediate representation: typed graph, op table, verifier, text form, interpreter."""

from lbc.ir.dtypes import DTYPES, DType, dtype
from lbc.ir.graph import Graph, Node, TensorType

__all__ = ["DTYPES", "DType", "dtype", "Graph", "Node", "TensorType"]
