# EIFER for Blender — the two commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
OUT    ?= out/demo

.PHONY: venv demo test bench build clean

# Create or refresh the local virtual environment whenever requirements.txt changes.
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(PY) -m eifer_blender demo --out $(OUT)

test: venv
	$(PY) -m pytest

bench: venv
	$(PY) -m benchmarks

build: venv
	$(PY) scripts/build_extension.py --output-dir dist

clean:
	rm -rf out dist build .pytest_cache
