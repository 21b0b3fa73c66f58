# Two commands for a newcomer: `make demo` and `make test`. Both build .venv themselves.
# `make check` is the lint, format, type and docs checks alone (`make test` runs it first).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp
SOURCES = zenaton runtime zenaton_cli

.PHONY: install demo check test bench clean

install: $(STAMP)

# Re-run whenever pyproject.toml changes, so new dependencies and extras get installed.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,dev,dashboard,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" bash .ci/demo

check: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	@# runtime/ installs as zenaton_runtime: mypy finds it under that name through this link
	@# (pyproject.toml [tool.mypy] mypy_path); a source checkout has no such folder.
	mkdir -p build/typecheck
	ln -sfn ../../runtime build/typecheck/zenaton_runtime
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict

test: check
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) build .pytest_cache
