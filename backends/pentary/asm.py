"""The pentary assembler: `.pasm` text -> `Image` (see docs/pentary-isa.md §10-11).

Parsing uses the generic lark grammar in `pasm.lark`; meaning comes from `isa.OPS`. Two passes:
pass 1 expands includes, lays out sections and defines labels; pass 2 evaluates every expression
(labels and `.equ` constants may be used before they are defined) and encodes. Every user error is
a `SourceError` pointing at the offending token.
"""

import bisect
import difflib
import os
from dataclasses import dataclass, field
from functools import lru_cache

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from lbc.errors import SourceError

from . import isa
from .image import Image, Section, Symbol

SECTION_ORDER = (".text", ".data", ".bss")
SECTION_KIND = {".text": "code", ".data": "data", ".bss": "zero"}
DIRECTIVES = (".text", ".data", ".bss", ".section", ".word", ".pent", ".space", ".string",
              ".ascii", ".qdesc", ".equ", ".set", ".include", ".entry", ".global", ".globl")
PSEUDOS = {"LI": 2}          # pseudo-instructions and their size in words
MAX_INCLUDE_DEPTH = 64
MAX_NESTING = 200       # parentheses / unary operators in one expression, and chained definitions
MAX_NAME = 255          # characters in a label or symbol name (the image stores names up to this)


@lru_cache(maxsize=1)
def _parser():
    path = os.path.join(os.path.dirname(__file__), "pasm.lark")
    with open(path, encoding="utf-8") as f:
        grammar = f.read()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


# --------------------------------------------------------------------------- source model

@dataclass(frozen=True)
class Loc:
    filename: str
    line: int
    col: int
    text: str           # the whole source line, for the caret display
    end_col: int = 0

    def error(self, message):
        return SourceError(message, self.filename, self.line, self.col, self.text)

    def snippet(self):
        end = self.end_col if self.end_col > self.col else len(self.text) + 1
        return self.text[self.col - 1:end - 1].strip()

    def where(self):
        return f"{self.filename}:{self.line}:{self.col}"


@dataclass
class Expr:
    kind: str           # num, sym, here, neg, pos, add, sub, mul, div, mod, mem, str
    args: tuple
    loc: Loc


@dataclass
class Stmt:
    kind: str           # "ins", "dir", "equ" or "" (labels only)
    name: str = ""
    name_loc: Loc = None
    operands: list = field(default_factory=list)
    labels: list = field(default_factory=list)    # [(name, Loc)]
    # filled in by pass 1
    section: str = ""
    offset: int = 0
    size: int = 0
    op: object = None


class _Source:
    def __init__(self, text, filename):
        self.filename = filename
        self.lines = text.split("\n")

    def loc(self, line, col, end_col=0):
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return Loc(self.filename, line, col, text.rstrip("\r"), end_col)

    def loc_of(self, node):
        if isinstance(node, Token):
            return self.loc(node.line, node.column, node.end_column or 0)
        m = node.meta
        end = m.end_column if getattr(m, "end_line", m.line) == m.line else 0
        return self.loc(m.line, m.column, end)


def _parse(text, filename):
    """Text -> list of Stmt. Raises SourceError on syntax errors."""
    src = _Source(text, filename)
    try:
        tree = _parser().parse(text if text.endswith("\n") else text + "\n")
    except UnexpectedCharacters as e:
        ch = text.split("\n")[e.line - 1][e.column - 1:e.column] if e.line > 0 else ""
        raise src.loc(e.line, e.column).error(f"syntax error: unexpected character {ch!r}") from None
    except UnexpectedToken as e:
        tok = e.token
        what = "end of line" if tok.type in ("_NL", "$END") else repr(str(tok))
        raise src.loc(tok.line, tok.column).error(f"syntax error: unexpected {what}") from None
    except UnexpectedInput as e:  # pragma: no cover - other lark failures
        raise src.loc(getattr(e, "line", 0), getattr(e, "column", 0)).error("syntax error") from None
    stmts = []
    for line in tree.children:
        labels, body = [], None
        for child in line.children:
            if child is None:
                continue
            if child.data == "label":
                tok = child.children[0]
                labels.append((str(tok), src.loc_of(tok)))
            else:
                body = child
        if body is None:
            if labels:
                stmts.append(Stmt("", labels=labels))
            continue
        if body.data == "assignment":
            name_tok, value = body.children
            stmts.append(Stmt("equ", str(name_tok), src.loc_of(name_tok),
                              [_expr(value, src)], labels))
            continue
        name_tok, ops = body.children
        operands = [] if ops is None else [_expr(o, src) for o in ops.children]
        kind = "ins" if body.data == "instruction" else "dir"
        stmts.append(Stmt(kind, str(name_tok), src.loc_of(name_tok), operands, labels))
    return stmts


_BINOPS = {"add", "sub", "mul", "div", "mod"}


def _expr(node, src, depth=0):
    loc = src.loc_of(node)
    kind = node.data
    if depth > MAX_NESTING:
        raise loc.error(f"expression nested more than {MAX_NESTING} levels deep")
    if kind in _BINOPS:
        # a chain a+b+c+... is a left-deep tree: walk its spine iteratively, so long sums never recurse
        spine = []
        while kind in _BINOPS:
            spine.append(node)
            node = node.children[0]
            kind = getattr(node, "data", None)
        e = _expr(node, src, depth + 1)
        for n in reversed(spine):
            e = Expr(n.data, (e, _expr(n.children[1], src, depth + 1)), src.loc_of(n))
        return e
    if kind in ("neg", "pos", "mem"):
        return Expr(kind, (_expr(node.children[0], src, depth + 1),), loc)
    if kind == "here":
        return Expr("here", (), loc)
    tok = node.children[0]
    s = str(tok)
    if kind == "symbol":
        return Expr("sym", (s,), loc)
    if kind == "number":
        v = int(s, 0) if s[:2].lower() in ("0x", "0b") else int(s, 10)
        return Expr("num", (v,), loc)
    if kind == "pent":
        digits = s[2:] if s[:2].lower() == "0p" else s
        return Expr("num", (isa.parse_pent_digits(digits),), loc)
    if kind == "char":
        chars = _unescape(s[1:-1], loc)
        return Expr("num", (ord(chars),), loc)
    if kind == "string":
        return Expr("str", (_unescape(s[1:-1], loc),), loc)
    raise AssertionError(kind)  # pragma: no cover


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}


def _unescape(body, loc):
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise loc.error(f"unknown escape sequence '\\{nxt}' (known: \\n \\t \\r \\0 \\\\ \\' \\\")")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# --------------------------------------------------------------------------- assembler

class _NotYet(Exception):
    """A label used in pass 1 where only constants are known."""


_HERE_LATER = object()  # `$` of a symbol definition before layout


def _close(name, choices):
    m = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(m)}?)" if m else ""


def _trunc_div(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


class Assembler:
    def __init__(self, include_paths=()):
        self.include_paths = list(include_paths)
        self.labels = {}        # name -> (section, offset, Loc), filled by pass 1
        self.label_names = {}   # name -> Loc, filled by the prescan
        self.equs = {}          # name -> (Expr, Loc)
        self.equ_values = {}
        self.equ_at = {}        # name -> (section, offset) of its definition: `$` in its expression
        self.sections = {}      # name -> {"kind", "size", "base", "stmts"}
        self.entry = None
        self.globals = []
        self.laid_out = False
        self._resolving = set()

    # ---- includes
    def _load(self, text, filename, depth=0, stack=()):
        out = []
        for st in _parse(text, filename):
            if st.kind == "dir" and st.name.lower() == ".include":
                if len(st.operands) != 1 or st.operands[0].kind != "str":
                    raise st.name_loc.error('.include takes one string operand: .include "file.pasm"')
                if st.labels:
                    out.append(Stmt("", labels=st.labels))
                path = self._find_include(st.operands[0].args[0], filename, st.operands[0].loc)
                key = os.path.realpath(path)
                if key in stack:
                    raise st.operands[0].loc.error(f"include cycle: '{path}' is already being included")
                if depth >= MAX_INCLUDE_DEPTH:
                    raise st.operands[0].loc.error(f"includes nested more than {MAX_INCLUDE_DEPTH} levels deep")
                try:
                    with open(path, encoding="utf-8") as f:
                        sub = f.read()
                except (OSError, UnicodeDecodeError) as e:
                    raise st.operands[0].loc.error(f"cannot read include file '{path}': {e}") from None
                out.extend(self._load(sub, path, depth + 1, stack + (key,)))
            else:
                out.append(st)
        return out

    def _find_include(self, name, including, loc):
        bases = []
        if including and not including.startswith("<"):
            bases.append(os.path.dirname(including) or ".")
        bases.append(os.getcwd())
        bases.extend(self.include_paths)
        for b in bases:
            p = os.path.join(b, name)
            if os.path.isfile(p):
                return p
        raise loc.error(f"cannot find include file '{name}' (searched: {', '.join(bases)})")

    # ---- symbols
    def _check_new_symbol(self, name, loc, what):
        if len(name) > MAX_NAME:
            raise loc.error(f"{what} name of {len(name)} characters; at most {MAX_NAME} are allowed")
        if isa.parse_reg(name) is not None:
            raise loc.error(f"bad {what} '{name}': register names are reserved")
        prev = self.label_names.get(name) or self.equs.get(name, (None, None))[1]
        if prev is not None:
            kind = "label" if what == "label" else "symbol"
            raise loc.error(f"duplicate {kind} '{name}' (first defined at {prev.where()})")

    def _symbol(self, name, loc):
        if name in self.label_names:
            if not self.laid_out:
                raise _NotYet(name)
            sec, off, _ = self.labels[name]
            return self.sections[sec]["base"] + off
        if name in self.equs:
            if name in self.equ_values:
                return self.equ_values[name]
            if name in self._resolving:
                raise loc.error(f"circular definition of '{name}'")
            if len(self._resolving) >= MAX_NESTING:
                raise loc.error(f"definitions chained more than {MAX_NESTING} deep (through '{name}')")
            self._resolving.add(name)
            try:
                v = self.eval(self.equs[name][0], self._equ_here(name))
            finally:
                self._resolving.discard(name)
            self.equ_values[name] = v
            return v
        if isa.parse_reg(name) is not None:
            raise loc.error(f"register {name} cannot be used in an expression here")
        known = list(self.label_names) + list(self.equs)
        raise loc.error(f"undefined symbol '{name}'{_close(name, known)}")

    def _equ_here(self, name):
        """`$` inside a symbol's definition: the address of the definition's place (§13.4); only
        known after layout (before it, an expression with `$` is not a constant yet)."""
        if name not in self.equ_at or not self.laid_out:
            return _HERE_LATER
        sec, off = self.equ_at[name]
        return self.sections[sec]["base"] + off

    def eval(self, e, here):
        k = e.kind
        if k == "num":
            return e.args[0]
        if k == "sym":
            return self._symbol(e.args[0], e.loc)
        if k == "here":
            if here is None:
                raise e.loc.error("'$' (the current address) is not available here")
            if here is _HERE_LATER or not self.laid_out:
                raise _NotYet("$")
            return here
        if k == "neg":
            return -self.eval(e.args[0], here)
        if k == "pos":
            return self.eval(e.args[0], here)
        if k in _BINOPS:
            spine = []  # the left spine of a chain a+b+c+..., evaluated without recursion
            while e.kind in _BINOPS:
                spine.append(e)
                e = e.args[0]
            a = self.eval(e, here)
            for n in reversed(spine):
                a = self._binop(n, a, self.eval(n.args[1], here))
            return a
        if k == "mem":
            raise e.loc.error(f"bad operand: a memory operand is not allowed here, got '{e.loc.snippet()}'")
        if k == "str":
            raise e.loc.error(f"bad operand: a string is not allowed here, got '{e.loc.snippet()}'")
        raise AssertionError(k)  # pragma: no cover

    @staticmethod
    def _binop(e, a, b):
        k = e.kind
        if k == "add":
            return a + b
        if k == "sub":
            return a - b
        if k == "mul":
            return a * b
        if b == 0:
            raise e.args[1].loc.error("division by zero in expression")
        q = _trunc_div(a, b)
        return q if k == "div" else a - b * q

    def const(self, e, what):
        """Evaluate in pass 1: constants only."""
        try:
            return self.eval(e, None)
        except _NotYet:
            raise e.loc.error(f"{what} must be a constant known before layout (no labels)") from None

    # ---- pass 0: every symbol's name, so pass 1 can tell "defined later" from "undefined"
    def prescan(self, stmts):
        for st in stmts:
            for lname, lloc in st.labels:
                self._check_new_symbol(lname, lloc, "label")
                self.label_names[lname] = lloc
            if st.kind == "equ":
                self._define_equ(st.name, st.name_loc, st.operands[0])
            elif st.kind == "dir" and st.name.lower() in (".equ", ".set"):
                ops = st.operands
                if len(ops) != 2 or ops[0].kind != "sym":
                    raise st.name_loc.error(f"{st.name} takes a name and a value: {st.name} NAME, expr")
                self._define_equ(ops[0].args[0], ops[0].loc, ops[1])
        # Resolve the constants now, in definition order and then in reverse, so a long chain of
        # definitions (each naming the previous or the next one) is resolved one link at a time
        # instead of recursively. Whatever fails here (labels, errors) is resolved or reported later.
        for name in list(self.equs) + list(reversed(self.equs)):
            try:
                self._symbol(name, self.equs[name][1])
            except (SourceError, _NotYet):
                pass

    # ---- pass 1
    def pass1(self, stmts):
        cur = ".text"
        self._section(cur)
        for st in stmts:
            name = st.name.lower() if st.kind == "dir" else st.name
            if st.kind == "dir" and name in (".text", ".data", ".bss", ".section"):
                if name == ".section":
                    if len(st.operands) != 1 or st.operands[0].kind not in ("sym", "str"):
                        raise st.name_loc.error(".section takes one name: .section NAME")
                    sname = st.operands[0].args[0]
                    sname = sname if sname.startswith(".") else "." + sname
                else:
                    if st.operands:
                        raise st.operands[0].loc.error(f"{name} takes no operands")
                    sname = name
                cur = sname
                self._section(cur)
            sec = self.sections[cur]
            for lname, lloc in st.labels:
                self.labels[lname] = (cur, sec["size"], lloc)
            st.section, st.offset = cur, sec["size"]
            if st.kind == "equ":
                self.equ_at[st.name] = (cur, sec["size"])
            elif st.kind == "dir" and name in (".equ", ".set") and st.operands and st.operands[0].kind == "sym":
                self.equ_at[st.operands[0].args[0]] = (cur, sec["size"])
            if st.kind == "ins":
                st.size = self._instruction_size(st)
            elif st.kind == "dir":
                st.size = self._directive_pass1(st, name, sec)
            if st.size:
                if sec["kind"] == "zero" and not (st.kind == "dir" and name == ".space"):
                    raise st.name_loc.error(f"only .space is allowed in {cur} (it holds no data)")
                sec["stmts"].append(st)
                sec["size"] += st.size

    def _section(self, name):
        if name not in self.sections:
            self.sections[name] = {"kind": SECTION_KIND.get(name, "data"), "size": 0,
                                   "base": 0, "stmts": []}

    def _define_equ(self, name, loc, expr):
        self._check_new_symbol(name, loc, "symbol")
        self.equs[name] = (expr, loc)

    def _instruction_size(self, st):
        u = st.name.upper()
        u = isa.ALIASES.get(u, u)
        if u in isa.BY_NAME:
            st.op = isa.BY_NAME[u]
            return 1
        if u in PSEUDOS:
            st.op = u
            return PSEUDOS[u]
        choices = list(isa.BY_NAME) + list(PSEUDOS) + list(isa.ALIASES)
        raise st.name_loc.error(f"unknown mnemonic '{st.name}'{_close(u, choices)}")

    def _directive_pass1(self, st, name, sec):
        ops = st.operands
        if name in (".text", ".data", ".bss", ".section"):
            return 0
        if name in (".equ", ".set"):
            return 0                                 # defined by the prescan
        if name == ".word":
            self._need(st, ops, 1, "at least one value")
            return len(ops)
        if name == ".pent":
            self._need(st, ops, 1, "at least one value")
            return -(-len(ops) // isa.PENTS)
        if name == ".space":
            if len(ops) not in (1, 2):
                raise st.name_loc.error(".space takes a count and an optional fill value")
            n = self.const(ops[0], ".space count")
            if n < 0:
                raise ops[0].loc.error(f".space count must not be negative, got {n}")
            return n
        if name in (".string", ".ascii"):
            if len(ops) != 1 or ops[0].kind != "str":
                raise st.name_loc.error(f'{name} takes one string: {name} "text"')
            return len(ops[0].args[0]) + (1 if name == ".string" else 0)
        if name == ".qdesc":
            if len(ops) != 4:
                raise st.name_loc.error(".qdesc takes four values: .qdesc k, rnd, lo, hi")
            return 1
        if name == ".entry":
            if len(ops) != 1:
                raise st.name_loc.error(".entry takes one address")
            if self.entry is not None:
                raise st.name_loc.error(f"duplicate .entry (first at {self.entry[1].where()})")
            self.entry = (ops[0], st.name_loc)
            return 0
        if name in (".global", ".globl"):
            for o in ops:
                if o.kind != "sym":
                    raise o.loc.error(f"bad operand: {name} takes symbol names, got '{o.loc.snippet()}'")
                self.globals.append(o)
            return 0
        raise st.name_loc.error(f"unknown directive '{st.name}'{_close(name, list(DIRECTIVES))}")

    @staticmethod
    def _need(st, ops, n, what):
        if len(ops) < n:
            raise st.name_loc.error(f"{st.name} needs {what}")

    # ---- layout
    def layout(self):
        names = [n for n in SECTION_ORDER if n in self.sections]
        names += [n for n in self.sections if n not in SECTION_ORDER]
        # zero-filled sections go last so the initialised image is one contiguous block
        names = [n for n in names if self.sections[n]["kind"] != "zero"] + \
                [n for n in names if self.sections[n]["kind"] == "zero"]
        addr = 0
        for n in names:
            self.sections[n]["base"] = addr
            addr += self.sections[n]["size"]
        if addr - 1 > isa.ADDR_MAX:
            loc = None
            for n in names:
                sec = self.sections[n]
                for st in sec["stmts"]:
                    if sec["base"] + st.offset + st.size - 1 > isa.ADDR_MAX:
                        loc = st.name_loc
                        break
                if loc is not None:
                    break
            raise loc.error(f"program does not fit in memory: it needs {addr} words from address 0, "
                            f"the last address is {isa.ADDR_MAX}")
        self.order = names
        self.laid_out = True

    # ---- pass 2
    def pass2(self):
        sections = []
        for n in self.order:
            sec = self.sections[n]
            if sec["size"] == 0:
                continue
            words = [0] * sec["size"]
            for st in sec["stmts"]:
                here = sec["base"] + st.offset
                out = self._emit(st, here)
                assert len(out) == st.size, (st.name, out)
                words[st.offset:st.offset + st.size] = out
            if sec["kind"] == "zero":
                if any(words):
                    bad = next(st for st in sec["stmts"] if any(self._emit(st, 0)))
                    raise bad.name_loc.error(f"{n} holds no data: .space fill must be 0 there")
                sections.append(Section(n, sec["base"], "zero", [], sec["size"]))
            else:
                sections.append(Section(n, sec["base"], sec["kind"], words))
        for g in self.globals:
            self._symbol(g.args[0], g.loc)
        return sections

    def _emit(self, st, here):
        if st.kind == "ins":
            return self._emit_instruction(st, here)
        name = st.name.lower()
        ops = st.operands
        if name == ".word":
            return [self._value(o, here, -isa.WORD_MAX, isa.WORD_MAX, ".word") for o in ops]
        if name == ".pent":
            return isa.pack_pents(self._value(o, here, -2, 2, ".pent") for o in ops)
        if name == ".space":
            fill = self._value(ops[1], here, -isa.WORD_MAX, isa.WORD_MAX, ".space fill") \
                if len(ops) > 1 else 0
            return [fill] * st.size
        if name in (".string", ".ascii"):
            s = ops[0].args[0]
            return [ord(c) for c in s] + ([0] if name == ".string" else [])
        if name == ".qdesc":
            k = self._value(ops[0], here, 0, isa.QDESC_K_MAX, ".qdesc k")
            rnd = self._value(ops[1], here, 0, 1, ".qdesc rnd")
            lo = self._value(ops[2], here, -isa.QDESC_LIMIT, isa.QDESC_LIMIT, ".qdesc lo")
            hi = self._value(ops[3], here, -isa.QDESC_LIMIT, isa.QDESC_LIMIT, ".qdesc hi")
            return [isa.qdesc(k, rnd, lo, hi)]
        raise AssertionError(name)  # pragma: no cover

    def _value(self, e, here, lo, hi, what):
        if e.kind in ("mem", "str"):
            raise e.loc.error(f"bad operand of {what}: expected a value, got '{e.loc.snippet()}'")
        if e.kind == "sym" and isa.parse_reg(e.args[0]) is not None:
            raise e.loc.error(f"bad operand of {what}: expected a value, got register '{e.args[0]}'")
        v = self.eval(e, here)
        if not lo <= v <= hi:
            raise e.loc.error(f"immediate {v} out of range for {what}: allowed range is {lo}..{hi}")
        return v

    def _emit_instruction(self, st, here):
        if st.op == "LI":
            op_lui = isa.BY_NAME["LUI"]
            if len(st.operands) != 2:
                raise st.name_loc.error(f"wrong number of operands for LI: expected 2 (rd, value), "
                                        f"got {len(st.operands)}")
            rd = self._reg(st.operands[0], "LI", 1)
            v = self._value(st.operands[1], here, -isa.WORD_MAX, isa.WORD_MAX, "LI value")
            lo = (v + isa.I7_MAX) % 5 ** 7 - isa.I7_MAX
            hi = (v - lo) // 5 ** 7
            return [isa.encode(op_lui, (rd, hi)), isa.encode("ADDI", (rd, rd, lo))]
        op = st.op
        values = self._match(op, st, here)
        return [isa.encode(op, values)]

    def _match(self, op, st, here):
        given = st.operands
        full = op.operands
        optional = [o for o in full if o.default is not None]
        if len(given) == len(full):
            slots = list(zip(full, given))
        elif optional and len(given) == len(full) - len(optional):
            it = iter(given)
            slots = [(o, None if o.default is not None else next(it)) for o in full]
        else:
            if optional:
                expected = f"{len(full) - len(optional)} or {len(full)}"
            else:
                expected = str(len(full))
            syntax = f" ({op.syntax()})" if full else ""
            raise st.name_loc.error(f"wrong number of operands for {op.name}: expected "
                                    f"{expected}{syntax}, got {len(given)}")
        values = []
        for i, (o, e) in enumerate(slots, 1):
            if e is None:
                values.append(isa.parse_reg(o.default) if o.kind == "reg" else o.default)
            elif o.kind == "reg":
                values.append(self._reg(e, op.name, i))
            elif o.kind == "mem":
                values.append(self._mem(e, op, i, here))
            else:
                if e.kind == "mem" or e.kind == "str" or (
                        e.kind == "sym" and isa.parse_reg(e.args[0]) is not None):
                    what = "an address" if o.kind == "addr" else "a value"
                    raise e.loc.error(f"bad operand {i} of {op.name}: expected {what}, "
                                      f"got '{e.loc.snippet()}'")
                values.append(self._value(e, here, o.lo, o.hi, f"{op.name} {o.name}"))
        return tuple(values)

    def _reg(self, e, opname, i):
        if e.kind == "sym":
            r = isa.parse_reg(e.args[0])
            if r is not None:
                return r
        raise e.loc.error(f"bad operand {i} of {opname}: expected a register (P0..P31, ZERO, FP, "
                          f"SP, LR), got '{e.loc.snippet()}'")

    def _mem(self, e, op, i, here):
        bad = e.loc.error(f"bad operand {i} of {op.name}: expected a memory operand "
                          f"[register + offset], got '{e.loc.snippet()}'")
        if e.kind != "mem":
            raise bad
        terms = []
        _flatten(e.args[0], 1, terms)
        base = None
        rest = []
        for sign, t in terms:
            if t.kind == "sym" and isa.parse_reg(t.args[0]) is not None:
                if sign < 0 or base is not None:
                    raise bad
                base = isa.parse_reg(t.args[0])
            else:
                if _mentions_reg(t):
                    raise bad
                rest.append((sign, t))
        off = 0
        for sign, t in rest:
            off += sign * self.eval(t, here)
        o = op.operands[i - 1]
        if not o.lo <= off <= o.hi:
            raise e.loc.error(f"immediate {off} out of range for {op.name} offset: allowed range is "
                              f"{o.lo}..{o.hi}")
        return (0 if base is None else base, off)

    # ---- driver
    def assemble(self, text, filename):
        stmts = self._load(text, filename)
        self.prescan(stmts)
        self.pass1(stmts)
        self.layout()
        sections = self.pass2()
        symbols = self._symbols(sections)
        if self.entry is not None:
            e, _ = self.entry
            entry = self._value(e, None, isa.ADDR_MIN, isa.ADDR_MAX, ".entry")
        elif "_start" in self.labels:
            entry = symbols["_start"].value
        else:
            entry = 0
        return Image(sections, symbols, entry)

    def _symbols(self, sections):
        out = {}
        ends = {n: self.sections[n]["base"] + self.sections[n]["size"] for n in self.order}
        by_section = {}
        for name, (sec, off, _) in self.labels.items():
            by_section.setdefault(sec, []).append(self.sections[sec]["base"] + off)
        for addrs in by_section.values():
            addrs.sort()
        for name, (sec, off, _) in self.labels.items():
            addr = self.sections[sec]["base"] + off
            addrs = by_section[sec]
            i = bisect.bisect_right(addrs, addr)  # the next label above this one ends its symbol
            end = addrs[i] if i < len(addrs) else ends[sec]
            out[name] = Symbol(name, addr, "label", end - addr)
        for name in self.equs:
            out[name] = Symbol(name, self._symbol(name, self.equs[name][1]), "const", 0)
        return out


def _flatten(e, sign, out):
    """Append the (sign, term) pairs of a sum to `out`, left to right (iteratively: sums may be long)."""
    stack = [(e, sign)]
    while stack:
        e, sign = stack.pop()
        if e.kind in ("add", "sub"):
            stack.append((e.args[1], sign if e.kind == "add" else -sign))
            stack.append((e.args[0], sign))
        elif e.kind == "pos":
            stack.append((e.args[0], sign))
        else:
            out.append((sign, e))


def _mentions_reg(e):
    stack = [e]
    while stack:
        e = stack.pop()
        if e.kind == "sym" and isa.parse_reg(e.args[0]) is not None:
            return True
        stack.extend(a for a in e.args if isinstance(a, Expr))
    return False


def assemble(text, filename="<input>", include_paths=()):
    """Assemble pentary assembly text into an `Image`. Raises `SourceError` on bad input."""
    return Assembler(include_paths).assemble(text, filename)


def assemble_file(path, include_paths=()):
    """Assemble the file at `path` (includes are searched next to it first)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        from lbc.errors import LbcError
        raise LbcError(f"cannot read assembly file '{path}': {e}") from None
    return assemble(text, path, include_paths)
