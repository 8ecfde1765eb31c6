"""Issue 13, part 7: long work shows its phase and layer on a terminal, and nothing when stderr is not
a terminal. (LBC_PROGRESS_DELAY=0 shows it from the start instead of after two seconds.)"""

import os
import pty
import subprocess
import sys

from cli_util import lbc


def test_progress_on_a_terminal(tmp_path, digits):
    master, slave = pty.openpty()
    env = dict(os.environ, LBC_PROGRESS_DELAY="0")
    p = subprocess.Popen([sys.executable, "-m", "lbc.cli", "compile", str(digits["model"]), "-o",
                          str(tmp_path / "out"), "--no-build"], stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert p.wait(timeout=600) == 0
    text = seen.decode(errors="replace")
    assert "lbc: quantize-" in text and "layer " in text, text   # phase and layer
    assert "lbc: warning:" in text.replace("\r", "\n")             # the status line never swallows output


def test_silent_when_not_a_terminal(tmp_path, digits):
    env = dict(os.environ, LBC_PROGRESS_DELAY="0")
    r = lbc("compile", digits["model"], "-o", tmp_path / "out", "--no-build", env=env)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "quantize-" not in r.stderr
