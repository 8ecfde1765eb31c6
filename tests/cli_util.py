"""Running the real `lbc` command in a subprocess, and checking the user-error contract."""

import subprocess
import sys


def lbc(*args, env=None, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "lbc.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


def assert_user_error(r, *needles):
    """Exit 1, no traceback, an `lbc: error:` message containing every needle. Returns the message."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    msg = r.stderr.strip()
    assert msg.startswith("lbc: error: "), msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg
