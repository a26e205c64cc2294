# Quick start: `make demo` runs the dense-urban scenario end to end, `make test` runs the suite.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint bench calibrate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel lies on disk; nothing may pull a CUDA build.
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -e ".[reference,dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# The demo: the closed loop on the dense-urban city (57 cells, 2,850 UEs, 100 ms steps, mobility,
# traffic, handover, energy, faults): the same seeded hour twice, the operators' rules (load-
# threshold switch-off + MRO rule) vs the AI apps (forecast-driven energy saver + MRO rule),
# through the guardrails, with a comparison report. A new run directory each time.
DEMO_OUT ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)
demo: $(STAMP)
	$(BIN)/mobileai run dense-urban --out $(DEMO_OUT) --duration 1h --start-hour 2 --period 5m \
		--apps energy-saver,mro-rule --baseline energy-threshold,mro-rule --approver reject

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/pip install --disable-pip-version-check -q -e ".[reference,dev,bench]"
	$(BIN)/mobileai bench radio --json
	$(BIN)/mobileai bench twin --json

calibrate: $(STAMP)
	$(BIN)/mobileai calibrate --scenario uma --carrier-ghz 6 --drops 20 --json

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
