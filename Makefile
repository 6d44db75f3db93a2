# The two commands of the README: `make reproduce` (set up, then the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lincir-installed

.PHONY: reproduce test test-fast notebooks main-job setup clean-venv

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP)

## Set up, then run the main job: every notebook re-executed in order (figures/ and JSON regenerated).
reproduce: $(STAMP)
	$(PY) -m lincir reproduce

## Set up if needed, then the whole test suite (unit tests on two xdist workers, then the notebooks under nbval,
## quick mode, one after another: they share runs/quick/).
test: $(STAMP)
	$(PY) -m pytest -n 2 tests
	if ls notebooks/*.ipynb >/dev/null 2>&1; then LINCIR_QUICK=1 $(PY) -m pytest --nbval-lax -p no:cacheprovider notebooks; fi

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 tests -m "not slow"

clean-venv:
	rm -rf $(VENV)
