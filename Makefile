# The two commands a fresh machine needs: `make demo` and `make test`.
# Both create .venv (with uv when it is on PATH, else python3 -m venv + pip) and install fmap into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PAIR ?= aeronaclinic_to_zoho
PYTEST_ARGS ?=

.PHONY: demo test venv lint bench clean

$(STAMP): pyproject.toml
	@if command -v uv >/dev/null 2>&1; then \
		uv venv --python $(PY) $(VENV) && uv pip install --python $(BIN)/python -e '.[dev]'; \
	else \
		$(PY) -m venv $(VENV) && $(BIN)/python -m pip install -q --upgrade pip && $(BIN)/python -m pip install -q -e '.[dev]'; \
	fi
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m fmap demo --pair $(PAIR)

# Two workers; --dist loadscope keeps each test module on one worker, so a module's shared fixtures
# (a seed migration run, a compiled mapping, a served sandbox) are built once, not once per worker;
# tests/conftest.py starts the longest modules first and puts tmp_path on tmpfs when there is one.
# Cost (2,661 tests, 2 cores shared with other jobs): 2 min 24 s wall, 271 s CPU (user+sys,
# workers and their subprocesses; pytest's own figure 143 s); a clean clone's .ci/run, install
# included, 2 min 59 s. Before loadscope (plain -n 2, tmp_path on disk, 500-patient pair runs):
# 8 min 26 s wall for 2,422 tests.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadscope $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check dsl compiler runtime fmap tests bench

bench: $(STAMP)
	$(BIN)/python bench/bench_parse.py

clean:
	rm -rf $(VENV) build .fmap-cache
