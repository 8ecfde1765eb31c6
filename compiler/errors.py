"""The two classes of failure lbc reports.

`LbcError` (and subclasses) is the user's problem: bad input, a model that does not fit, a missing
tool. The CLI prints its one-line message and exits 1. `InternalError` is lbc's problem: the CLI
prints a traceback and exits 2.
"""


class LbcError(Exception):
    """A problem with the user's input or environment. One line, naming the thing and the fix."""


class ModelError(LbcError):
    """The model file is missing, unreadable, or uses something lbc cannot import."""


class UnsupportedOpError(ModelError):
    """The model uses ops the frontend does not know. Lists every one of them at once."""


class TargetError(LbcError):
    """The model does not fit or cannot be emitted for the chosen target."""


class ToolchainError(LbcError):
    """An external tool (cross compiler, assembler, emulator) is missing or failed on user input."""


class SourceError(LbcError):
    """A syntax or semantic error in a source file (e.g. pentary assembly), with its location.

    `str()` gives ``file:line:col: message`` followed by the source line and a caret.
    """

    def __init__(self, message, filename="<input>", line=0, col=0, source_line=None):
        self.message, self.filename, self.line, self.col = message, filename, line, col
        self.source_line = source_line
        super().__init__(self.render())

    def render(self):
        head = f"{self.filename}:{self.line}:{self.col}: {self.message}"
        if self.source_line is None:
            return head
        caret = " " * max(self.col - 1, 0) + "^"
        return f"{head}\n    {self.source_line.rstrip()}\n    {caret}"


class InternalError(Exception):
    """A bug in lbc. Reported with a traceback and exit code 2."""
