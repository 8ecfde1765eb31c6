"""`lbc asm`, `lbc disasm`, `lbc sim`: the pentary toolchain subcommands."""

import os
import sys

from lbc.errors import LbcError
from lbc.output import write_file


def register(subparsers):
    """Add the `asm`, `disasm` and `sim` subcommands to the main `lbc` argparse."""
    p = subparsers.add_parser("asm", help="assemble pentary assembly (.pasm) into a .pent image")
    p.add_argument("source", help="assembly file (.pasm)")
    p.add_argument("-o", "--output", help="output image (default: the source with .pent)")
    p.add_argument("-I", "--include", action="append", default=[], metavar="DIR",
                   help="extra directory to search for .include files")
    p.set_defaults(func=cmd_asm)

    p = subparsers.add_parser("disasm", help="disassemble a .pent image back to assembly text")
    p.add_argument("image", help=".pent image")
    p.add_argument("-o", "--output", help="write the text here instead of stdout")
    p.add_argument("--no-addresses", action="store_true",
                   help="leave out the address/pents comment on each line")
    p.set_defaults(func=cmd_disasm)

    p = subparsers.add_parser("sim", help="run a .pent image (or a .pasm file) on the pentary simulator")
    p.add_argument("image", help=".pent image, or .pasm source to assemble first")
    p.add_argument("--trace", action="store_true", help="print every executed instruction")
    p.add_argument("--dump", default="", metavar="ITEMS",
                   help="comma-separated registers and memory to print at the end: P1,SP,buf,buf:4,100:2")
    p.add_argument("--max-cycles", type=int, default=None, metavar="N",
                   help="stop with an error after N cycles (default 10,000,000)")
    p.add_argument("--break", dest="breaks", action="append", default=[], metavar="ADDR",
                   help="print the registers whenever execution reaches ADDR (address or label)")
    p.add_argument("--input", default="", metavar="V,V,...",
                   help="values for the IN instruction's queue (decimal integers)")
    p.add_argument("--stats", action="store_true", help="print instruction, cycle and memory counts")
    p.add_argument("-I", "--include", action="append", default=[], metavar="DIR",
                   help="include directory when the input is .pasm source")
    p.set_defaults(func=cmd_sim)


def load_image(path, include_paths=()):
    """A .pent file, or a .pasm/.s/.asm file assembled on the fly."""
    from .asm import assemble_file
    from .image import Image

    if os.path.splitext(path)[1].lower() in (".pasm", ".s", ".asm"):
        return assemble_file(path, include_paths)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise LbcError(f"cannot read image '{path}': {e}") from None
    return Image.from_bytes(data, path)


def cmd_asm(args):
    from .asm import assemble_file

    image = assemble_file(args.source, args.include)
    out = args.output or os.path.splitext(args.source)[0] + ".pent"
    write_file(out, image.to_bytes())
    return 0


def cmd_disasm(args):
    from .disasm import disassemble

    text = disassemble(load_image(args.image), addresses=not args.no_addresses)
    if args.output:
        write_file(args.output, text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    return 0


def _parse_inputs(text):
    if not text.strip():
        return []
    try:
        return [int(t, 0) for t in text.split(",")]
    except ValueError:
        raise LbcError(f"--input takes comma-separated integers, got '{text}'") from None


def format_dump(sim, items):
    """Lines for --dump: registers as `P1 = 10`, memory as `buf = [1, 2]` (symbol size or :N)."""
    from . import isa

    lines = []
    for item in [t.strip() for t in items.split(",") if t.strip()]:
        name, _, count = item.partition(":")
        n = None
        if count:
            try:
                n = int(count, 0)
            except ValueError:
                raise LbcError(f"--dump: bad count in '{item}' (use NAME:N)") from None
        reg = isa.parse_reg(name)
        if reg is not None and not count:
            v = sim.regs[reg]
            lines.append(f"{name} = {v}  ({isa.pent_str(v)})")
            continue
        try:
            where = int(name, 0)
        except ValueError:
            where = name
            if name not in sim.image.symbols:
                sim.image.address(name)          # raises with close matches
        words = sim.read(where, n)
        lines.append(f"{name} = {words[0]}" if n is None and len(words) == 1 and isinstance(where, int)
                     else f"{name} = [{', '.join(str(w) for w in words)}]")
    return lines


def cmd_sim(args):
    from .sim import DEFAULT_MAX_CYCLES, Simulator

    image = load_image(args.image, args.include)

    def emit(text):
        sys.stdout.write(text)
        sys.stdout.flush()

    sim = Simulator(image, inputs=_parse_inputs(args.input), out=emit)
    breaks = []
    for b in args.breaks:
        try:
            breaks.append(int(b, 0))
        except ValueError:
            image.address(b)                     # raises with close matches if unknown
            breaks.append(b)
    max_cycles = DEFAULT_MAX_CYCLES if args.max_cycles is None else args.max_cycles
    trace = (lambda line: print(line, file=sys.stderr)) if args.trace else None
    spent = 0
    while True:
        st = sim.run(max_cycles - spent, breakpoints=breaks, trace=trace)
        spent = st.cycles
        if st.status != "break":
            break
        regs = " ".join(f"{n}={sim.regs[i]}" for i, n in
                        ((i, f"P{i}") for i in range(1, 32)) if sim.regs[i])
        print(f"break at {st.pc}: {regs or 'all registers 0'}", file=sys.stderr)
    sys.stdout.flush()
    for line in format_dump(sim, args.dump):
        print(line)
    if args.stats:
        print(st.summary())
    if st.status == "fault":
        raise LbcError(f"{args.image}: machine fault at PC {st.pc}: {st.fault}")
    if st.status == "limit":
        raise LbcError(f"{args.image}: cycle limit of {max_cycles} reached at address {st.pc} "
                       f"(raise it with --max-cycles)")
    return st.exit_code
