# asdstudy: the two commands a newcomer needs are `make reproduce` and `make test`.
# Both create .venv when missing and install the pinned CPU stack (torch 2.13.0 CPU,
# xgboost-cpu, jupyter-book 1.x) with requirements/constraints.txt so nothing upgrades torch.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PROFILE ?= default
JOBS   ?= 2
# native (fastest; same numbers on the same kind of CPU) or portable (same numbers on any AVX2 CPU)
NUMERICS ?= $(or $(ASDSTUDY_NUMERICS),native)
STAMP   = $(VENV)/.asdstudy-installed
REQS    = requirements/base.txt requirements/test.txt requirements/constraints.txt pyproject.toml

.PHONY: setup test reproduce book data bench calibrate screenshot clean-book

$(STAMP): $(REQS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
	    -c requirements/constraints.txt -r requirements/base.txt -r requirements/test.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the stack

test: $(STAMP)  ## the test suite (smoke profile end to end, book included)
	$(BIN)/python -m pytest -q

reproduce: $(STAMP)  ## all chapters on the default profile, then the book
	ASDSTUDY_NUMERICS=$(NUMERICS) $(BIN)/asdstudy reproduce --profile $(PROFILE) --jobs $(JOBS)

book: $(STAMP)  ## rebuild the book from the executed chapters
	$(BIN)/asdstudy book

data: $(STAMP)  ## the synthetic DCASE 2020-layout set of the profile
	$(BIN)/asdstudy data generate --profile $(PROFILE) --jobs $(JOBS)

bench: $(STAMP)  ## benchmarks (numbers for the issue notes)
	$(BIN)/python scripts/bench_data.py --jobs $(JOBS)

calibrate: $(STAMP)  ## the twin check: DCASE baseline on the factory vs its published results
	$(BIN)/python scripts/calibrate.py --jobs $(JOBS)

screenshot: $(STAMP)  ## headless-Chromium screenshot of the built scoreboard page
	$(BIN)/python scripts/screenshot.py
