"""Streaming (stateful) spiking models on the NES (6502, ca65): `jsr lbc_reset`, then `jsr lbc_step`
once per time step.

Supported graphs: chains of spiking layers, each a dense layer whose input is spikes (b1) and whose
accumulator feeds a `lif` node whose decay is a shift (1 - beta = 2^-s, d = 1). The compiler proves
that every membrane and every current fits int16 (ir/ops/spiking.py `state_bound`; the sums of a
neuron's positive and of its negative weights plus its constant) and refuses the model otherwise, so
the 16-bit arithmetic below is the interpreter's exactly and the update's +-2^30 clamp never acts.

Per layer and step:
* the currents start at each neuron's constant (bias and leak term, c + b);
* for every input byte that is nonzero (a spike), the weight column of that input (int8, one byte
  per neuron, a table of column addresses) is added to the 16-bit currents: cost proportional to the
  number of spikes, no multiply;
* every neuron: t = (v + 2^(s-1)) >> s (16-bit arithmetic shift), u = v - t + current, spike when
  u > thr (signed 16-bit compare), then v = vr (reset to a value) or v = u - vr (subtraction).
The spikes of a hidden layer go to a byte buffer the next layer scans; the last layer's to lbc_output.
"""

import numpy as np

from lbc.backends.base import comment_safe
from lbc.backends.stream_graph import layer_weights, spiking_layers
from lbc.ir.ops.spiking import state_bound

I16 = 32767


def _bytes(values):
    v = [int(x) & 0xFFFF for x in values]
    return [x & 0xFF for x in v], [x >> 8 for x in v]


def _rows(label, values, per=16):
    vals = [int(v) & 0xFF for v in values] or [0]
    out = [f"{label}:"]
    for i in range(0, len(vals), per):
        out.append("    .byte " + ", ".join(f"${v:02x}" for v in vals[i:i + per]))
    return out


class NesStream:
    def __init__(self, graph):
        self.g = graph
        self.layers = []
        self._analyse()

    def _analyse(self):
        pairs, self.problems = spiking_layers(self.g, "nes", "the NES")
        for dense, lif in pairs:
            self._layer(dense, lif)

    def _layer(self, dense, lif):
        g = self.g
        w, b, pos, neg = layer_weights(g, dense)
        M, K = w.shape
        vec = lambda k: np.broadcast_to(np.asarray(lif.attr(k), dtype=np.int64), (M,))
        cb = vec("c") + b
        d, s = vec("d"), int(lif.attr("s"))
        name = lif.name
        if not np.all(d == 1) or s < 1 or s > 8:
            self.problems.append(f"lif {name}: the NES target needs a decay that is a shift (1 - beta = 2^-s, "
                                 f"s = 1..8); this layer has d = {sorted(set(d.tolist()))[:4]}, s = {s}")
            return
        cur = int(max((pos + np.clip(cb, 0, None)).max(initial=0), -(neg + np.clip(cb, None, 0)).min(initial=0)))
        bound = state_bound(lif, cur)
        thr, vr = vec("thr"), vec("vr")
        if cur > I16 or bound is None or bound + (1 << (s - 1)) > I16 or np.abs(thr).max() > I16 \
                or np.abs(vr).max() > I16:
            self.problems.append(f"lif {name}: its membrane or current may not fit 16 bits (bound {bound}, current "
                                 f"{cur}); quantise to fewer weight bits (--quant int4 or ternary)")
            return
        if np.abs(w).max(initial=0) > 127:
            self.problems.append(f"dense {dense.name}: weights beyond int8")
            return
        self.layers.append({"dense": dense, "lif": lif, "K": K, "M": M, "w": w, "cb": cb, "thr": thr, "vr": vr,
                            "s": s, "subtract": lif.attr("reset") == "subtract", "input": dense.inputs[0],
                            "spikes": lif.outputs[0], "state": lif.inputs[1]})

    # ------------------------------------------------------------------ code

    def render(self):
        """(model.s body lines, RAM bytes, ROM data bytes)"""
        g = self.g
        code, data, bss = [], [], []
        bss_bytes = 0
        for li, la in enumerate(self.layers):
            L, M, K = f"L{li}", la["M"], la["K"]
            cb_lo, cb_hi = _bytes(la["cb"])
            th_lo, th_hi = _bytes(la["thr"])
            vr_lo, vr_hi = _bytes(la["vr"])
            data += [f"; {comment_safe(la['dense'].name)} -> {comment_safe(la['lif'].name)}: {K} inputs, {M} neurons"]
            data += _rows(f"{L}_w", la["w"].T.reshape(-1))  # column i at i * M
            data += [f"{L}_cl:", "    .byte " + ", ".join(f"<({L}_w + {i * M})" for i in range(K))]
            data += [f"{L}_ch:", "    .byte " + ", ".join(f">({L}_w + {i * M})" for i in range(K))]
            for nm, vals in (("cbl", cb_lo), ("cbh", cb_hi), ("thl", th_lo), ("thh", th_hi), ("vrl", vr_lo),
                             ("vrh", vr_hi)):
                data += _rows(f"{L}_{nm}", vals)
            bss += [f"{L}_al: .res {M}", f"{L}_ah: .res {M}", f"{L}_vl: .res {M}   ; state {comment_safe(la['state'])}",
                    f"{L}_vh: .res {M}"]
            bss_bytes += 4 * M
            last = la["spikes"] in g.outputs
            if not last:
                bss += [f"{L}_z: .res {M}   ; spikes of {comment_safe(la['lif'].name)}"]
                bss_bytes += M
            src = "lbc_input + 1" if la["input"] == g.inputs[0] else \
                f"L{next(j for j, x in enumerate(self.layers) if x['spikes'] == la['input'])}_z"
            dst = "lbc_output" if last else f"{L}_z"
            R = 1 << (la["s"] - 1)
            code += [
                f"; ---- layer {li}: {comment_safe(la['dense'].name)} -> {comment_safe(la['lif'].name)}",
                f"    ldx #{M - 1}",
                f"@{L}init:",
                f"    lda {L}_cbl,x", f"    sta {L}_al,x", f"    lda {L}_cbh,x", f"    sta {L}_ah,x",
                "    dex", f"    bpl @{L}init",
                "    ldx #0",
                f"@{L}scan:",
                f"    lda {src},x",
                f"    beq @{L}skip",
                "    stx lbc_i",
                f"    lda {L}_cl,x", "    sta lbc_p", f"    lda {L}_ch,x", "    sta lbc_p+1",
                f"    ldy #{M - 1}",
                f"@{L}add:",
                "    lda (lbc_p),y",
                f"    bmi @{L}neg",
                "    clc", f"    adc {L}_al,y", f"    sta {L}_al,y",
                f"    bcc @{L}next",
                f"    lda {L}_ah,y", "    adc #0", f"    sta {L}_ah,y",   # carry is set: +1
                f"    jmp @{L}next",
                f"@{L}neg:",
                "    clc", f"    adc {L}_al,y", f"    sta {L}_al,y",
                f"    bcs @{L}next",
                f"    lda {L}_ah,y", "    sbc #0", f"    sta {L}_ah,y",   # carry is clear: -1
                f"@{L}next:",
                "    dey", f"    bpl @{L}add",
                "    ldx lbc_i",
                f"@{L}skip:",
                "    inx", f"    cpx #{K}", f"    bne @{L}scan",
                f"    ldx #{M - 1}",
                f"@{L}neuron:",
                # t = (v + R) >> s
                "    clc", f"    lda {L}_vl,x", f"    adc #{R}", "    sta lbc_t", f"    lda {L}_vh,x", "    adc #0",
                *[ln for _ in range(la["s"]) for ln in ("    cmp #$80", "    ror a", "    ror lbc_t")],
                "    sta lbc_t+1",
                # u = v - t + current
                "    sec", f"    lda {L}_vl,x", "    sbc lbc_t", "    sta lbc_u", f"    lda {L}_vh,x", "    sbc lbc_t+1",
                "    sta lbc_u+1",
                "    clc", "    lda lbc_u", f"    adc {L}_al,x", "    sta lbc_u", "    lda lbc_u+1", f"    adc {L}_ah,x",
                "    sta lbc_u+1",
                # spike when thr - u < 0 (signed)
                "    sec", f"    lda {L}_thl,x", "    sbc lbc_u", f"    lda {L}_thh,x", "    sbc lbc_u+1",
                f"    bvc @{L}nv", "    eor #$80", f"@{L}nv:",
                f"    bmi @{L}fire",
                "    lda lbc_u", f"    sta {L}_vl,x", "    lda lbc_u+1", f"    sta {L}_vh,x",
                "    lda #0", f"    sta {dst},x",
                f"    jmp @{L}done",
                f"@{L}fire:",
            ]
            if la["subtract"]:
                code += ["    sec", "    lda lbc_u", f"    sbc {L}_vrl,x", f"    sta {L}_vl,x", "    lda lbc_u+1",
                         f"    sbc {L}_vrh,x", f"    sta {L}_vh,x"]
            else:
                code += [f"    lda {L}_vrl,x", f"    sta {L}_vl,x", f"    lda {L}_vrh,x", f"    sta {L}_vh,x"]
            code += ["    lda #1", f"    sta {dst},x", f"@{L}done:", "    dex", f"    bmi @{L}end",
                     f"    jmp @{L}neuron", f"@{L}end:"]
        resets = []
        for li, la in enumerate(self.layers):
            L = f"L{li}"
            init = np.asarray(g.states[la["state"]].init).reshape(-1)
            lo, hi = _bytes(init)
            data += _rows(f"{L}_v0l", lo) + _rows(f"{L}_v0h", hi)
            resets += [f"    ldx #{la['M'] - 1}", f"@{L}r:", f"    lda {L}_v0l,x", f"    sta {L}_vl,x",
                       f"    lda {L}_v0h,x", f"    sta {L}_vh,x", "    dex", f"    bpl @{L}r"]
        return code, resets, data, bss, bss_bytes

    def macs(self):
        return int(sum(la["K"] * la["M"] for la in self.layers))
