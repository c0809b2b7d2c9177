# The two commands a newcomer types: `make quickstart` and `make test`.
# torch==2.13.0 is installed first: an unpinned torch pulls a multi-GB CUDA build, and
# torchvision/timm/torchcodec must never be installed (they break beside this torch).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

.PHONY: quickstart test install install-dev browser lint clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: setup.py | $(VENV)/bin/python
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: setup.py | $(VENV)/bin/python
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Debian's Chromium for the demo's real-browser test; the test skips (saying so) if this fails.
browser:
	@command -v chromium >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "make browser: could not install chromium; the browser test will skip"; }

lint: install-dev
	$(VENV)/bin/ruff check .

test: install-dev browser lint
	$(PY) -m pytest -n 2 --timeout 600 tests

quickstart: install
	$(VENV)/bin/mtclar quickstart

clean:
	rm -rf outputs .pytest_cache build *.egg-info
