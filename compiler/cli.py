"""The `lbc` command line. Each subcommand is a thin wrapper over the driver.

User errors (`LbcError`, and bad command-line arguments) print one `lbc: error:` line (then indented
details, or a located source excerpt) and exit 1; anything else is an internal error: traceback,
exit 2. SIGTERM is handled like Ctrl-C, so an interrupted compile leaves nothing behind.
"""

import argparse
import signal
import sys
import traceback

from lbc import __version__, progress
from lbc.errors import LbcError, one_line


class Parser(argparse.ArgumentParser):
    """argparse with lbc's error contract: a bad command line is a user error (exit 1)."""

    def error(self, message):
        usage = self.format_usage().strip().replace("\n", "\n  ")
        print(f"lbc: error: {one_line(message)}\n  {usage}", file=sys.stderr)
        sys.exit(1)


class Terminated(KeyboardInterrupt):
    """SIGTERM: unwinds like Ctrl-C (every output folder being written is cleaned up)."""


def _terminate(signum, frame):
    raise Terminated


def build_parser():
    p = Parser(prog="lbc", description="Compile neural networks to firmware for tiny machines.")
    p.add_argument("--version", action="version", version=f"lbc {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    from lbc import commands
    commands.register(sub)
    from lbc.backends.pentary import cli as pentary_cli
    pentary_cli.register(sub)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    old = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGTERM, old)


def _run(args):
    try:
        with progress.on_terminal():
            return args.func(args) or 0
    except LbcError as e:
        print("lbc: error: " + "\n".join(e.lines()), file=sys.stderr)
        return 1
    except Terminated:
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: not an error
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception:  # noqa: BLE001 - the internal-error class: report and exit 2
        traceback.print_exc()
        print("lbc: internal error (a bug in lbc); please report it with the model that triggered it",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
