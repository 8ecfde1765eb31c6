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


def lbc_here(*args, cwd=None):
    """`lbc` run in this process (much faster than a subprocess for the many small error cases):
    a CompletedProcess with the exit code and what it printed."""
    import contextlib
    import io
    import os
    from lbc.cli import main
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main([str(a) for a in args])
            except SystemExit as e:
                rc = e.code
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def assert_one_error_line(r, *needles):
    """The user-error contract, strictly: exit 1, one `lbc: error:` line, any further lines indented
    detail (never a second `lbc: error:`), no traceback, no numpy warning."""
    msg = assert_user_error(r, *needles)
    lines = r.stderr.strip().splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("lbc: error:")]
    assert len(errors) == 1, r.stderr
    assert all(line.startswith(" ") for line in lines[errors[0] + 1:]), r.stderr
    assert "RuntimeWarning" not in r.stderr
    return msg
