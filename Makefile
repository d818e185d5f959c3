# Two commands: `make run` (the whole system on embedded servers) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/rollcall dev

# The pytest run includes the compose test (tests/deploy/test_compose.py): as root it installs
# Docker Engine, Compose and mmdebstrap when missing and starts dockerd if none runs.
test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest --basetemp=.pytest-tmp

# The browser tests drive Debian's chromium (with a Chinese font for the screenshots); install
# them once if they are not there (as root).
chromium:
	@test -x /usr/bin/chromium -a -d /usr/share/fonts/truetype/wqy || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei \
		>/dev/null; }

bench: $(STAMP)
	$(BIN)/rollcall bench

clean:
	rm -rf $(VENV) .rollcall .pytest_cache
