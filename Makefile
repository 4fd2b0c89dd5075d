# Set-up and the two commands the README names. Everything a fresh Debian/Ubuntu machine needs is
# installed here (as root): a virtualenv with monkeys, a Docker engine, debootstrap.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test
.DEFAULT_GOAL := demo

$(BIN)/monkeys: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,cpu,ray]'
	touch $@

# A Docker engine (installed and started where none answers and we are root) and debootstrap.
setup: $(BIN)/monkeys
	$(BIN)/monkeys doctor --fix

# The main job on the embedded defaults: the bundled images, the bundled CPU model (Gemma 3 270M on
# llama.cpp) sampling the bundled suite, every attempt judged, and the coverage/cost report.
demo: setup
	$(BIN)/monkeys demo

# Test-only tools: a registry on loopback for the pull path, and the official swebench package's log
# parsers and apply commands (their modules need nothing else, so not its heavy dependencies) to check
# ours against. The registry comes from apt as doctor installs packages: waiting for another apt's lock
# (a fresh machine's first boot), and stopping here, naming the package, if it cannot be installed.
test: setup
	$(BIN)/pip install -q --no-deps 'swebench==5.0.2'
	@command -v docker-registry >/dev/null || $(BIN)/python -m harness.apt docker-registry
	$(BIN)/pytest -q
