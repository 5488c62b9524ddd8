# fastkd: the two commands of the README.
#   make experiments   create/update .venv, install fastkd, run the distillation experiment suite
#   make test          create/update .venv, run every test (nbdev_test and pytest), non-zero on failure
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fastkd-installed
# Real CIFAR-10: FASTKD_DATA if set, else ../shared/data/cifar10 when present, else fastai's download.
FASTKD_DATA ?= $(shell [ -d ../shared/data/cifar10 ] && cd ../shared/data/cifar10 && pwd)
export FASTKD_DATA
# Slow (real-data) notebook cells run where the real CIFAR-10 is present.
NBFLAGS := $(if $(FASTKD_DATA),--flags slow,)
# The committed report's run: all experiments, 3 seeds, figures into figures/ (finished runs are skipped).
ARGS ?= --seeds 0 1 2 --figures figures

.PHONY: venv experiments test test-fast export clean-nbs
venv: $(STAMP)
$(STAMP): requirements-dev.txt settings.ini setup.py
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

experiments: $(STAMP)
	$(BIN)/fastkd run $(ARGS)

test: $(STAMP)
	$(BIN)/nbdev_test --n_workers 2 --timing $(NBFLAGS)
	$(BIN)/python -m pytest -q tests/

export: $(STAMP)
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean
