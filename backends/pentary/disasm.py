"""Image -> assembly text that re-assembles to a byte-identical image.

Code sections are decoded with `isa.decode` (words that are not instructions come out as `.word`),
data sections as `.word`, zero sections as `.space`. Labels come back from the symbol table and
branch targets are printed by name.
"""

from . import isa

_SECTION_DIRECTIVES = {".text", ".data", ".bss"}


def disassemble(image, addresses=True):
    """Assembly text for `image`. `addresses` adds `; address  pents` comments."""
    names = image.label_names()
    labels = sorted((s for s in image.symbols.values() if s.kind == "label"),
                    key=lambda s: (s.value, s.name))
    consts = [s for s in image.symbols.values() if s.kind == "const"]
    out = ["; disassembled by lbc"]
    entry = names.get(image.entry, str(image.entry))
    out.append(f"        .entry  {entry}")
    for c in consts:
        out.append(f"        .equ    {c.name}, {c.value}")
    placed = set()
    for sec in image.sections:
        out.append("")
        out.append(f"        {sec.name}" if sec.name in _SECTION_DIRECTIVES
                   else f"        .section {sec.name[1:] if sec.name.startswith('.') else sec.name}")

        def labels_at(addr, at_end=False):
            for s in labels:
                if s.value == addr and s.name not in placed and (s.size == 0) == at_end:
                    placed.add(s.name)
                    out.append(f"{s.name}:")

        if sec.kind == "zero":
            cuts = sorted({s.value for s in labels if sec.address <= s.value < sec.end} | {sec.end})
            pos = sec.address
            for cut in cuts:
                if cut > pos:
                    out.append(f"        .space  {cut - pos}")
                    pos = cut
                if cut < sec.end:
                    labels_at(cut)
        else:
            for i, w in enumerate(sec.words):
                addr = sec.address + i
                labels_at(addr)
                text = None
                if sec.kind == "code":
                    try:
                        op, values = isa.decode(w)
                        text = isa.format_instruction(op, values, names.get)
                    except isa.IllegalInstruction:
                        text = None
                if text is None:
                    text = f".word  {w}"
                if addresses:
                    out.append(f"        {text:<32} ; {addr:>6}  {isa.pent_str(w, isa.PENTS)}")
                else:
                    out.append(f"        {text}")
        labels_at(sec.end, at_end=True)
    for s in labels:
        if s.name not in placed:   # not inside any section: keep the value, lose the label-ness
            out.append(f"        .equ    {s.name}, {s.value}   ; label outside every section")
    return "\n".join(out) + "\n"
