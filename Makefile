# EIFER for Blender — the two commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
OUT    ?= out/demo

.PHONY: venv demo test suite bench build zips matrix lock clean

# Create or refresh the local virtual environment whenever requirements.txt or pyproject.toml
# changes; the project itself goes in editable, so `.venv/bin/eifer` runs from any folder.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --editable .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(PY) -m eifer_blender demo --out $(OUT)

# The whole test suite on bpy 5.0.1 (it also builds the zips and runs the smoke flow on them), then
# the smoke flow of the built linux zip on Blender 4.5 LTS and 5.2 in their own environments.
test: suite matrix

suite: venv
	$(PY) -m pytest

bench: venv
	$(PY) -m benchmarks --markdown out/bench.md

# One extension zip per platform in dist/, each with the locked cp311 and cp313 wheels
# (downloaded once into ~/.cache/eifer-blender/wheels), validated by Blender's blender_ext.py.
zips: venv
	$(PY) scripts/build_extension.py --output-dir dist

build: zips

# The smoke flow of dist/'s linux zip on Blender 4.5 LTS and 5.2, each in its own .venv-bpy*/ made
# from requirements-bpy*.txt (bpy alone, so every other import must come from the zip's wheels).
matrix: zips
	$(PY) tests/smoke/matrix.py

# Re-resolve the bundled wheels after editing requirements-wheels.in (needs PyPI, python3.11 and python3.13).
lock: venv
	$(PY) scripts/fetch_wheels.py lock

clean:
	rm -rf out dist build .pytest_cache
