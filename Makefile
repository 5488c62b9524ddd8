# fastkd: the two commands of the README.
#   make experiments   create/update .venv, install fastkd, reproduce the committed results/cpu in runs/cpu (uncommitted)
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
# The committed reference's settings, run again into runs/cpu/ (ignored by git; a rerun resumes there) and compared at the
# end with the records of the same settings in results/cpu (ARGS="... --settings tuned": the tuned ones, as the README table).
# The reference itself: ARGS="--preset cpu --seeds 0 1 2 --out results --figures figures".
ARGS ?= --preset cpu --seeds 0 1 2 --only classic

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

# A second environment: what installing this checkout with pip gets today (`pip install .`: the newest fastai and
# fastcore, no nbdev, no accelerate), built in .venv-newest (it ignores itself in git), then the pytest suite there.
NEWEST := .venv-newest
.PHONY: test-newest
test-newest:
	[ -x $(NEWEST)/bin/python ] || $(PYTHON) -m venv $(NEWEST)
	echo '*' > $(NEWEST)/.gitignore
	$(NEWEST)/bin/python -m pip install -q --upgrade pip
	$(NEWEST)/bin/python -m pip install -q --upgrade torch==2.14.1 torchvision==0.29.1 fastai fastcore timm pytest hypothesis -e .
	$(NEWEST)/bin/python -c "import fastai, fastcore, torch; print('newest env: fastai', fastai.__version__, 'fastcore', fastcore.__version__, 'torch', torch.__version__)"
	$(NEWEST)/bin/python -m pytest -q tests/

# The notebooks committed executed, with their outputs (the documentation a reader sees on GitHub): export, then run
# each notebook in place as nbdev_test runs it (`slow` cells where the real data is), keep the outputs, nbdev_clean.
# `make docs NBS="nbs/06_logit.ipynb nbs/09_attention.ipynb"` runs only those. tests/test_docs.py checks the result.
.PHONY: docs
docs: $(STAMP)
	$(BIN)/python tools/nb.py export
	$(BIN)/python tools/run_nbs.py $(NBS)
