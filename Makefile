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

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check dsl compiler runtime fmap tests bench

bench: $(STAMP)
	$(BIN)/python bench/bench_parse.py

clean:
	rm -rf $(VENV) build .fmap-cache
