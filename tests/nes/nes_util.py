"""Helpers shared by the NES tests: skip reasons for missing tools, a tiny flat-binary builder for
testing single generated neurons under py65."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from lbc.backends.base import template_env
from lbc.backends.nes import lower as L
from lbc.runtime.nes import harness as H

HAVE_CC65 = all(shutil.which(t) for t in ("ca65", "ld65", "sim65"))
need_cc65 = pytest.mark.skipif(not HAVE_CC65, reason="cc65 (ca65, ld65, sim65) not installed: apt-get install cc65")


def _has(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


need_py65 = pytest.mark.skipif(not _has("py65"), reason="py65 not installed (pip install py65)")
need_cynes = pytest.mark.skipif(not _has("cynes"), reason="cynes not installed (pip install cynes)")

FLAT_CFG = """MEMORY {
    ZP:   start = $0000, size = $0100, type = rw;
    MAIN: start = $1000, size = $E000, file = %O;
}
SEGMENTS {
    ZEROPAGE: load = ZP, type = zp;
    CODE:     load = MAIN, type = ro, align = $100;
    RODATA:   load = MAIN, type = ro, align = $100;
}
"""

# the model's own multiply and shift tables, every shift table included
TABLES = '.segment "RODATA"\n.align 256\n' + template_env(Path(L.__file__).parent / "templates").get_template(
    "tables.s.j2").render(tables=True, shift_tables=range(1, 8))


def build_neurons(tmp, neurons, K, kernel):
    """Assemble several neurons over one shared input vector into a flat binary; returns a py65 image.

    neurons: list of dicts w, b, m, k, lo, hi, o_in, o_out, ul, uh. Neuron j stores its byte at out+j.
    The inputs live in the zero page when they fit there, else in absolute memory."""
    tmp = Path(tmp)
    c, sub, data = L.Code(), L.Code(), []
    zp = K + 8 + len(neurons) + L.Tmp.BYTES <= 256
    ins = [L.Loc(f"inp+{i}", zp) for i in range(K)]
    acc24_any = False
    plans = []
    for j, n in enumerate(neurons):
        planes = L.planes_of(n["w"])
        Kb = int(n["b"]) - n["o_in"] * int(np.sum(n["w"]))
        lab = f"n{j}"
        call = kernel != "unrolled"
        if kernel.startswith("unrolled"):
            X0, off, rmin, rmax = L.unrolled_chain_plan(planes, n["ul"], n["uh"])
            p = L.plan_requant(rmin, rmax, Kb - off, n["m"], n["k"], n["lo"], n["hi"], n["o_out"])
            L.verify_requant(p, rmin, rmax, Kb - off, n["m"], n["k"], n["lo"], n["hi"], n["o_out"])
            if p.kind != "const" and planes:
                L.emit_unrolled_neuron(c, planes, X0, ins, lab)
            raw24 = False
        else:
            off0, off, rmin, rmax, bits = L.loop_offset(planes, n["ul"], n["uh"], K) if planes else (0, 0, 0, 0, 16)
            raw24 = bits == 24
            acc24_any |= raw24
            p = L.plan_requant(rmin, rmax, Kb - off, n["m"], n["k"], n["lo"], n["hi"], n["o_out"])
            L.verify_requant(p, rmin, rmax, Kb - off, n["m"], n["k"], n["lo"], n["hi"], n["o_out"])
            if p.kind != "const" and planes:
                masks = L.loop_masks(planes, K)
                labs = [f"{lab}_m{i}" for i in range(len(planes))]
                data += [(ml, mb) for (pl, mb), ml in zip(masks, labs) if mb is not None]
                L.emit_loop_neuron(c, planes, masks, labs, "plane24" if raw24 else "plane16", off0, raw24)
        L.emit_requant(c, p, L.Loc(f"outp+{j}", True), lab, raw24=raw24 and p.kind != "const", call=call)
        plans.append(p)
    if kernel == "loop":
        L.emit_plane_routine(sub, "plane16", "inp", zp, K, False)
        L.emit_plane_routine(sub, "plane24", "inp", zp, K, True)
    L.emit_mul_routines(sub)
    init = L.Code()
    L.emit_mul_init(init)
    src = ['.segment "ZEROPAGE"'] + [f"{n}: .res {s}" for n, s in L.Tmp.ALL]
    src += [f"outp: .res {len(neurons)}"] + ([f"inp: .res {K + 8}"] if zp else [])
    src += ['.segment "CODE"', "entry:", *init.lines, *c.lines, "    rts", *sub.lines, TABLES]
    src += [] if zp else [f"inp: .res {K + 8}"]  # py65's flat image is all RAM
    src = [L.MACROS] + src
    src += [f"{lab}: .byte " + ",".join(str(int(v)) for v in mb) for lab, mb in data]
    (tmp / "n.s").write_text("\n".join(src) + "\n")
    (tmp / "flat.cfg").write_text(FLAT_CFG)
    objs = H.assemble(tmp, ["n.s"])
    H.link(tmp, "flat.cfg", objs, "n.bin", labels="n.lbl")
    labels = H.read_labels(tmp / "n.lbl")
    return H.py65_flat((tmp / "n.bin").read_bytes(), 0x1000, labels), plans
