"""The `lbc` command line. Each subcommand is a thin wrapper over the driver.

User errors (`LbcError`) print one line (or a located source excerpt) and exit 1; anything else is
an internal error: traceback, exit 2.
"""

import argparse
import sys
import traceback

from lbc import __version__
from lbc.errors import LbcError


def build_parser():
    p = argparse.ArgumentParser(prog="lbc", description="Compile neural networks to firmware for tiny machines.")
    p.add_argument("--version", action="version", version=f"lbc {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from lbc import commands
    commands.register(sub)
    from lbc.backends.pentary import cli as pentary_cli
    pentary_cli.register(sub)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except LbcError as e:
        print(f"lbc: error: {e}", file=sys.stderr)
        return 1
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
