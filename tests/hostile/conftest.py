"""Fixtures of the hostile-input suite: one worker process (see worker.py) shared by all cases."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contract import COUNT, Worker  # noqa: E402


def pytest_terminal_summary(terminalreporter):
    if COUNT["cases"]:
        terminalreporter.write_line(f"hostile-input suite: {COUNT['cases']} cases run, each checked against the "
                                    f"contract (tests/hostile/contract.py)")


@pytest.fixture(scope="session")
def worker():
    w = Worker()
    yield w
    w.close()
