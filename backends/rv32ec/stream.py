"""Streaming (stateful) spiking models on RV32EC: one `lbc_step()` per time step.

Supported graphs: chains of spiking layers, each a dense layer whose input is spikes (b1) and whose
i32 accumulator feeds a `lif` node, with reshapes between them. Everything else in a graph with
state is refused by `problems()`.

Per layer the generated C (model.c) does, with no multiply anywhere:

* collects the weight columns of the active inputs as a list of pointers (the graph input is scanned
  a 32-bit word at a time; a hidden layer's list is built by the previous layer's neurons as they
  fire, so hidden spikes are never written out);
* adds those columns in packed pairs: each 32-bit word holds two neurons' int16 weights as
  w[2p] + w[2p+1] * 2^16, and a sum of such words is sum(lo) + sum(hi) * 2^16 exactly, so one add
  serves two neurons; the compiler proves every neuron's sums of positive and of negative weights fit
  int16 (else it refuses). The sums start from the neurons' constant (bias and leak term) when that
  also fits. A generated assembly routine (lbc_kernels.S) keeps eight words in registers per pass
  over the list: two instructions per word and active input;
* updates every neuron, unrolled with its constants as immediates: lo = (int16)word,
  hi = (word - lo) >> 16, u = v - leak(v) + c + b + I, spike when u > thr, reset; the leak is the
  shift-add expansion of v * d >> s (rounded half up) and the update's clamp is left out when the
  leak provably bounds v (ir/ops/spiking.py `state_bound`).

States (the membranes, int32) live at their planned places in lbc_ram and keep their values between
steps; `lbc_reset()` gives them their initial values.
"""

import numpy as np

from lbc.backends.base import Namer, c_array, comment_safe
from lbc.backends.stream_graph import layer_weights, spiking_layers
from lbc.ir.ops.spiking import U_LIMIT, state_bound

CHUNK = 8  # packed words one assembly pass keeps in registers (a3, t0-t2, s0, s1, ra, tp)
REGS = ("t0", "t1", "t2", "s0", "s1", "ra", "tp", "a3")


def _uniform(v):
    v = np.asarray(v).reshape(-1)
    return bool(v.size) and bool(np.all(v == v[0]))


class StreamLowering:
    def __init__(self, graph):
        self.g = graph
        self.layers = []
        self.names = Namer("lbc_")
        self._analyse()

    def _analyse(self):
        pairs, self.problems = spiking_layers(self.g, "rv32ec", "rv32ec")
        for dense, lif in pairs:
            self._layer(dense, lif)

    def _layer(self, dense, lif):
        g = self.g
        w, b, pos, neg = layer_weights(g, dense)
        M, K = w.shape
        name = lif.name
        if pos.max(initial=0) > 32767 or neg.min(initial=0) < -32768:
            self.problems.append(f"lif {name}: the weight sums of a neuron exceed int16 ({int(pos.max())}, "
                                 f"{int(neg.min())}); rv32ec adds columns in packed int16 pairs")
            return
        d, s = np.asarray(lif.attr("d"), dtype=np.int64), int(lif.attr("s"))
        if not _uniform(d):
            self.problems.append(f"lif {name}: neurons with different decays (beta) are not supported by rv32ec")
            return
        d = int(d.reshape(-1)[0])
        bound = state_bound(lif, int(max(pos.max(initial=0), -neg.min(initial=0))) + int(np.abs(b).max(initial=0)))
        clamp = bound is None or bound >= U_LIMIT
        if d and (bound is None or bound * d + (1 << max(s - 1, 0)) >= 2**31):
            self.problems.append(f"lif {name}: cannot prove the leak v * {d} fits 32 bits (no multiplier, no "
                                 f"64-bit arithmetic on rv32ec)")
            return
        n = M
        vec = lambda k: np.broadcast_to(np.asarray(lif.attr(k), dtype=np.int64), (n,))
        cb = vec("c") + b
        # the constant starts the packed sums when every lane stays within int16 with it
        fold = bool((pos + np.clip(cb, 0, None)).max(initial=0) <= 32767
                    and (neg + np.clip(cb, None, 0)).min(initial=0) >= -32768)
        self.layers.append({"fold": fold,
            "dense": dense, "lif": lif, "K": K, "M": M, "P": (M + 1) // 2, "w": w,
            "cb": cb, "thr": vec("thr"), "vr": vec("vr"), "d": d, "s": s,
            "subtract": lif.attr("reset") == "subtract", "clamp": clamp,
            "state": lif.inputs[1], "input": dense.inputs[0], "spikes": lif.outputs[0],
        })

    # ------------------------------------------------------------------ code

    @staticmethod
    def _packed(w):
        M, K = w.shape
        P = (M + 1) // 2
        wp = np.zeros((2 * P, K), dtype=np.int64)
        wp[:M] = w
        words = (wp[0::2] + wp[1::2] * 65536) % 2**32  # [P, K]
        return words.T.reshape(-1)  # column i at i * P

    @staticmethod
    def _leak_expr(d, s, var="u"):
        """C expression of the leak of `var` (int32): (var * d + 2^(s-1)) >> s with var * d as shifts and adds."""
        if d == 0:
            return None
        terms = [f"({var} << {b})" if b else var for b in range(d.bit_length()) if d >> b & 1]
        prod = " + ".join(terms)
        if s == 0:
            return f"({prod})"
        return f"(({prod} + {1 << (s - 1)}) >> {s})"

    def render(self, offsets):
        """(constants, step body lines, reset lines, max active list length)"""
        consts, body, resets, kernels = [], [], [], {}
        kmax = max(la["K"] for la in self.layers)
        g = self.g
        for li, la in enumerate(self.layers):
            wid = self.names(f"{la['lif'].name}_w")
            words = self._packed(la["w"])
            consts.append({"ident": wid, "ctype": "uint32_t", "len": len(words),
                           "body": c_array(words, 8, fmt=lambda v: f"0x{v:08x}"),
                           "comment": comment_safe(f"{la['dense'].name}: weight columns, packed int16 pairs "
                                                   f"w[2p] + w[2p+1] * 2^16, column i at i * {la['P']}", 200)})
            la["wid"] = wid
        for li, la in enumerate(self.layers):
            P, M = la["P"], la["M"]
            body.append(f"    /* {comment_safe(la['dense'].name)} -> {comment_safe(la['lif'].name)}: {la['K']} inputs, "
                        f"{M} neurons */")
            if li == 0 or la["input"] not in [x["spikes"] for x in self.layers[:li]]:
                src = "input" if la["input"] == g.inputs[0] else f"(LBC_RAM + {offsets[la['input']]})"
                body.append(f"    end = lbc_scan({src}, {la['K']}, {la['wid']}, {P}, lbc_act);")
            init = [0] * P
            if la["fold"]:
                cbp = np.zeros(2 * P, dtype=np.int64)
                cbp[:M] = la["cb"]
                init = [int((cbp[2 * j] + cbp[2 * j + 1] * 65536) % 2**32) for j in range(P)]
            body.append("    " + " ".join(f"acc[{j}] = 0x{v:08x}u;" for j, v in enumerate(init)))
            for c0 in range(0, P, CHUNK):
                w = min(P, c0 + CHUNK) - c0
                kname = f"lbc_colsum_{w}_{c0}"
                kernels[kname] = {"name": kname, "width": w, "first": c0, "regs": REGS[:w]}
                body.append(f"    {kname}(lbc_act, end, acc + {c0});")
            nxt = next((x for x in self.layers[li + 1:] if x["input"] == la["spikes"]), None)
            out = la["spikes"] in g.outputs or any(la["spikes"] in n.inputs for n in g.nodes
                                                 if n is not (nxt or {}).get("dense"))
            vptr = f"((int32_t *)(LBC_RAM + {offsets[la['state']]}))"
            zptr = f"(LBC_RAM + {offsets[la['spikes']]})"
            body.append(f"    v = {vptr};")
            body.append('    __asm__("" : "+r"(v));  /* keep v in a register: one base for all neurons */')
            if nxt:
                body.append("    end = lbc_act;")
            leak = self._leak_expr(la["d"], la["s"])
            for j in range(M):
                lane = f"(int32_t)(int16_t)acc[{j // 2}]" if j % 2 == 0 else \
                    f"(((int32_t)acc[{j // 2}] - (int16_t)acc[{j // 2}]) >> 16)"
                upd = f"u = v[{j}]" if leak is None else f"u = v[{j}]; u = u - {leak}"
                const = "" if la["fold"] else f" + {int(la['cb'][j])}"
                line = f"    {upd}; u += {lane}{const};"
                if la["clamp"]:
                    line += f" if (u > {U_LIMIT}) u = {U_LIMIT}; if (u < -{U_LIMIT}) u = -{U_LIMIT};"
                thr, vr = int(la["thr"][j]), int(la["vr"][j])
                reset = f"u -= {vr};" if la["subtract"] else f"u = {vr};"
                fire = []
                if out:
                    fire.append(f"{zptr}[{j}] = 1;")
                if nxt:
                    fire.append(f"*end++ = {nxt['wid']} + {j * nxt['P']};")
                quiet = f" else {{ {zptr}[{j}] = 0; }}" if out else ""
                body.append(line)
                body.append(f"    if (u > {thr}) {{ {reset} {' '.join(fire)} }}{quiet}")
                body.append(f"    v[{j}] = u;")
            st = g.states[la["state"]]
            init = np.asarray(st.init).reshape(-1)
            value = "0"
            if init.any():
                value = self.names(f"{la['state']}_init")
                consts.append({"ident": value, "ctype": "int32_t", "len": len(init), "body": c_array(init),
                               "comment": comment_safe(f"initial value of state {la['state']}")})
                value += "[i]"
            resets.append(f"    for (int i = 0; i < {M}; i++)")
            resets.append(f"        ((int32_t *)(LBC_RAM + {offsets[la['state']]}))[i] = {value};")
        return consts, body, resets, kmax, max(la["P"] for la in self.layers), [kernels[k] for k in sorted(kernels)]

    def macs(self):
        return int(sum(la["K"] * la["M"] for la in self.layers))
