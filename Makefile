# lbc: the two entry points a fresh machine needs. Both run the set-up first (idempotent).
PY := .venv/bin/python

.PHONY: setup demo test bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) scripts/demo.py
	@$(PY) scripts/demo_seeds.py

test: setup
	@$(PY) -m pytest

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build .pytest_cache
