"""The hostile-input suite's worker: runs `lbc` cases in one long-lived process under a memory limit.

Reads one JSON case per line on stdin ({"argv": [...], "cwd": ..., "timeout": s} for the CLI, or
{"sim": path, "cycles": n} for the simulator) and answers one JSON line: exit code, stdout, stderr,
and whether the case hit its time limit. A case that runs out of time is interrupted (SIGALRM raises
a BaseException, so lbc's cleanup runs as for Ctrl-C); the address-space limit makes a runaway
allocation a MemoryError (an internal error, exit 2) instead of taking the machine down.
"""

import contextlib
import io
import json
import os
import resource
import signal
import sys
import traceback

MEMORY_LIMIT = 4 << 30


class Hang(BaseException):
    pass


def _alarm(signum, frame):
    raise Hang


def run_cli(argv):
    from lbc.cli import main
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def run_sim(path, cycles):
    from lbc.backends.pentary.cli import load_image
    from lbc.backends.pentary.sim import Simulator
    from lbc.errors import LbcError
    try:
        image = load_image(path)
        Simulator(image, inputs=[1, 2, 3], out=lambda text: None).run(cycles)
        return 0
    except LbcError as e:
        print("lbc: error: " + "\n".join(e.lines()), file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - reported as the internal error it is
        traceback.print_exc()
        return 2


def main():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    signal.signal(signal.SIGALRM, _alarm)
    home = os.getcwd()
    for line in sys.stdin:
        case = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        hang = False
        rc = None
        try:
            os.chdir(case.get("cwd") or home)
            signal.alarm(int(case.get("timeout", 60)))
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = run_sim(case["sim"], case["cycles"]) if "sim" in case else run_cli(case["argv"])
                finally:
                    signal.alarm(0)
        except Hang:
            hang = True
        finally:
            os.chdir(home)
        sys.__stdout__.write(json.dumps({"rc": rc, "stdout": out.getvalue()[-20000:],
                                         "stderr": err.getvalue()[-20000:], "hang": hang}) + "\n")
        sys.__stdout__.flush()


if __name__ == "__main__":
    main()
