# make run   : set up (venv + requirements), index seeds/, start the main job
# make test  : set up, then run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
DOCS ?= seeds/

.PHONY: setup run index ask test chromium clean bench

# The embedding model exported to ONNX once (.cache/models/); later runs find the file and do nothing.
setup: $(STAMP)
	$(PY) -m index.onnx_model

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

index: setup
	$(PY) -m index build $(DOCS)

# The chat page on http://127.0.0.1:7860 (HOST=0.0.0.0 PORT=8080 to change).
HOST ?= 127.0.0.1
PORT ?= 7860
run: index
	$(PY) -m ui --host $(HOST) --port $(PORT)

# The terminal prompt instead of the page.
ask: index
	$(PY) -m qa

# The browser test drives Debian's chromium; install it when missing (root or sudo).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: setup chromium
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# Performance figures of docs/BENCHMARKS.md: every script under docs/bench/ (slow; not part of CI).
bench: setup
	set -e; for script in docs/bench/*.py; do echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf .index test-output eval-output
