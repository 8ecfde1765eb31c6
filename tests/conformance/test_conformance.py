"""The ONNX backend node tests (regenerated from the installed onnx; see node_cases.py) through
load_model + the float interpreter: no case may give a wrong answer or crash, and every case must
end as tests/conformance/expected.txt says. After an intended change, refresh the list with
    .venv/bin/python tests/conformance/refresh.py
and review its diff."""

import node_cases


def test_node_conformance():
    results = node_cases.run_all(jobs=2)
    node_cases.write_report(results)
    counts = node_cases.totals(results)
    print("\nONNX node tests: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    bad = [f"{name}: {outcome} ({detail})" for name, (outcome, detail) in results.items()
           if outcome in ("wrong", "crash")]
    assert not bad, "wrong answers or crashes:\n" + "\n".join(bad)
    expected = node_cases.read_expected()
    changed = [f"{name}: expected {expected.get(name, '(new case)')}, got {outcome} {detail}".rstrip()
               for name, (outcome, detail) in results.items() if expected.get(name) != outcome]
    changed += [f"{name}: expected {expected[name]}, case no longer generated"
                for name in expected if name not in results]
    assert not changed, (f"{len(changed)} case(s) changed outcome (if intended, run "
                         f"`.venv/bin/python tests/conformance/refresh.py` and commit expected.txt):\n"
                         + "\n".join(changed[:50]))
