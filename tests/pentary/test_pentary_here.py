"""`$` (the address of the current statement) in any expression, symbol definitions included (spec
§13.4): `N = $ - pw` after a table is its length."""

import pytest

from lbc.backends.pentary.asm import assemble
from lbc.backends.pentary.sim import run
from lbc.errors import LbcError

SRC = """
    .data
pw: .word 1, 2, 3
N = $ - pw
    .word 9
    .equ M, $ - pw + 10
    .text
    LI P1, N
    OUT P1, 1
    LI P1, M
    OUT P1, 1
    LI P1, here
    OUT P1, 1
    LI P1, end
    OUT P1, 1
    HALT
here = $
end:
"""


def test_dollar_in_symbol_definitions():
    image = assemble(SRC, "here.pasm")
    sim, _ = run(image)
    n, m, here, end = (int(v) for v in sim.output.split())
    assert (n, m) == (3, 14)
    assert here == end > 0


def test_dollar_symbol_is_not_a_layout_constant():
    with pytest.raises(LbcError, match="constant known before layout"):
        assemble("    .data\nt: .word 1\nN = $ - t\n    .space N\n", "x.pasm")
