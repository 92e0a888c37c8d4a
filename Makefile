PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test test-slow bench docs lint clean mutation

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed-demo: $(VENV)/bin/activate pyproject.toml
	$(PIP) install -e '.[demo]'
	touch $@

$(VENV)/.installed-test: $(VENV)/bin/activate pyproject.toml
	$(PIP) install -e '.[test,demo]'
	touch $@

demo: $(VENV)/.installed-demo
	$(PY) examples/demo.py

# Two workers: on the 2-core box a cold run (numba compiling the kernels, quimb its own)
# takes ~285 s instead of ~370 s in one process.
test: $(VENV)/.installed-test
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n 2

test-slow: $(VENV)/.installed-test
	$(PY) -m pytest -q -m slow

$(VENV)/.installed-docs: $(VENV)/bin/activate pyproject.toml
	$(PIP) install -e '.[docs]'
	touch $@

docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

bench: $(VENV)/.installed-test
	$(PIP) install -e '.[bench]'
	$(PY) benchmarks/run.py --quick

# Mutation testing of the core (docs/mutation.md): long (hours on 2 cores), not part of `test`.
# Config in pyproject.toml [tool.mutmut]; results with `$(VENV)/bin/mutmut results`.
mutation: $(VENV)/.installed-test
	$(PIP) install -e '.[mutation]'
	TNKIT_HYPOTHESIS_PROFILE=mutation $(VENV)/bin/mutmut run --max-children 2

lint: $(VENV)/.installed-test
	$(PY) -m ruff check tnkit tests benchmarks examples
	$(PY) -m ruff format --check tnkit tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
