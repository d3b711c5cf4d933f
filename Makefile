# The two set-up commands (see README): each prepares the environment, then runs.
.PHONY: run test setup
PY := .venv/bin/python

setup:
	@bash scripts/setup.sh

run: setup
	@$(PY) -m liveband.cli $(ARGS)

test: setup
	@$(PY) -m pytest $(PYTEST_ARGS)
