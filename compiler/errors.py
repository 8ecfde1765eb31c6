"""The two classes of failure lbc reports.

`LbcError` (and subclasses) is the user's problem: bad input, a model that does not fit, a missing
tool. The CLI prints its one-line message and exits 1. `InternalError` is lbc's problem: the CLI
prints a traceback and exits 2.
"""

import re


class LbcError(Exception):
    """A problem with the user's input or environment. One line, naming the thing and the fix;
    `details` (e.g. every reason a model does not fit) are listed below it, one per line."""

    def __init__(self, message="", details=()):
        self.message, self.details = str(message), [str(d) for d in details]
        super().__init__(self.message + "".join(f"\n  - {d}" for d in self.details))

    def lines(self):
        """The message as the CLI prints it: one line, then the indented details. Every line has its
        control characters escaped, so model-supplied names can neither forge a second `lbc: error:`
        line nor drown the terminal."""
        return [one_line(self.message)] + [f"  - {one_line(d)}" for d in self.details]


MAX_LINE = 400


def one_line(text, limit=MAX_LINE):
    """`text` with every non-printable character (newline, escape, ...) written as a Python escape,
    cut to `limit` characters."""
    s = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return s if len(s) <= limit else s[:limit - 3] + "..."


class ModelError(LbcError):
    """The model file is missing, unreadable, or uses something lbc cannot import."""


class UnsupportedOpError(ModelError):
    """The model uses ops the frontend does not know. Lists every one of them at once."""


class QuantError(ModelError):
    """A layer whose scales cannot be rescaled exactly in 32-bit integer arithmetic."""


class TargetError(LbcError):
    """The model does not fit or cannot be emitted for the chosen target."""


class ToolchainError(LbcError):
    """An external tool (cross compiler, assembler, emulator) is missing or failed on user input."""


class SourceError(LbcError):
    """A syntax or semantic error in a source file (e.g. pentary assembly), with its location.

    `str()` gives ``file:line:col: message`` followed by the source line and a caret.
    """

    def __init__(self, message, filename="<input>", line=0, col=0, source_line=None):
        self.filename, self.line, self.col = filename, line, col
        self.source_line = source_line
        Exception.__init__(self, self.render(message))
        self.message, self.details = message, []

    def render(self, message):
        head = f"{self.filename}:{self.line}:{self.col}: {message}"
        if self.source_line is None:
            return head
        text, col = excerpt(self.source_line.rstrip(), self.col)
        return f"{head}\n    {text}\n    {' ' * max(col - 1, 0)}^"

    def lines(self):
        return [one_line(line, 2 * MAX_LINE) for line in str(self).split("\n")]


def excerpt(line, col, width=100):
    """At most `width` characters of a source line around column `col` (1-based): (text, new col)."""
    line = "".join(c if c.isprintable() else " " for c in line)
    if len(line) <= width:
        return line, col
    start = max(0, min(col - 1 - width // 2, len(line) - width))
    text = line[start:start + width]
    lead = "..." if start > 0 else ""
    tail = "..." if start + width < len(line) else ""
    return lead + text + tail, col - start + len(lead)


_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:;+\-=()\[\]#@/]")


def safe_name(name, limit=40):
    """A model-supplied name made safe to print in a one-line message: printable ASCII, bounded."""
    s = _UNSAFE.sub("_", str(name))
    return s if len(s) <= limit else s[:limit - 3] + "..."


def name_list(names, limit=3, what="node"):
    """'node: a', '2 nodes: a, b', '7 nodes: a, b, c and 4 more': sanitised model-supplied names,
    at most `limit` of them."""
    names = list(names)
    shown = ", ".join(safe_name(n) for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{what}: {shown}" if len(names) == 1 else f"{len(names)} {what}s: {shown}{more}"


class Problems:
    """Every problem found with a model, collected so that one error lists them all.

    Problems of one kind ("unsupported op Foo") are grouped: the message names each kind once with
    its count and the first few node names, so even a model with thousands of bad nodes gets one
    short line."""

    def __init__(self, what="node"):
        self.what = what  # what the names are: node, layer
        self.groups = {}  # kind -> [node names] (an empty list for a problem that is not per node)

    def add(self, kind, node=None):
        names = self.groups.setdefault(kind, [])
        if node is not None:
            names.append(node)

    def __bool__(self):
        return bool(self.groups)

    def __len__(self):
        return len(self.groups)

    def __iter__(self):
        return iter(self.lines())

    def lines(self):
        out = []
        for kind, names in self.groups.items():
            out.append(f"{kind} ({name_list(names, what=self.what)})" if names else kind)
        return out

    def message(self, head):
        return f"{head}: " + "; ".join(self.lines())

    def raise_if_any(self, head, cls=None):
        if self:
            raise (cls or ModelError)(self.message(head))


class LbcWarning(UserWarning):
    """Something the user should know about a compile that still succeeded (the Python API issues
    these with `warnings.warn`; the CLI prints them as `lbc: warning:` lines)."""


class InternalError(Exception):
    """A bug in lbc. Reported with a traceback and exit code 2."""
