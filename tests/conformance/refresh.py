"""Re-run the ONNX node-test conformance suite and rewrite tests/conformance/expected.txt.

Usage: .venv/bin/python tests/conformance/refresh.py
Refuses to write a list with wrong answers or crashes (those must be fixed, never recorded).
Prints the totals and the cases whose outcome changed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import node_cases  # noqa: E402


def main():
    results = node_cases.run_all(jobs=2)
    node_cases.write_report(results)
    old = node_cases.read_expected() if node_cases.EXPECTED.exists() else {}
    for name, (outcome, detail) in results.items():
        if old.get(name) != outcome:
            print(f"{name}: {old.get(name, '(new)')} -> {outcome} {detail}".rstrip())
    counts = node_cases.totals(results)
    print("totals: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if counts["wrong"] or counts["crash"]:
        print("not written: fix the wrong answers and crashes first", file=sys.stderr)
        return 1
    node_cases.write_expected(results)
    print(f"wrote {node_cases.EXPECTED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
