# make run   : set up (venv + requirements), index seeds/, start the main job
# make test  : set up, then run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
DOCS ?= seeds/

.PHONY: setup run index ask test chromium ocr-tools reliability bench clean

# The embedding model (fp32, and int8 for new indexes) and the neural reader exported to ONNX
# once (.cache/models/); later runs find the files and do nothing.
setup: $(STAMP)
	$(PY) -m index.onnx_model
	$(PY) -m index.onnx_model --variant int8
	$(PY) -m qa.readers.neural

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

index: setup
	$(PY) -m index build $(DOCS)

# The chat page on http://127.0.0.1:7860 (PORT=8080 to change; any other HOST needs UI_ARGS="--auth-file FILE").
HOST ?= 127.0.0.1
PORT ?= 7860
run: index
	$(PY) -m ui --host $(HOST) --port $(PORT) $(UI_ARGS)

# The terminal prompt instead of the page.
ask: index
	$(PY) -m qa

# The browser test drives Debian's chromium; install it when missing (root or sudo).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Scanned PDF pages are read with Debian's Tesseract and its English data; install them when missing.
ocr-tools:
	@{ command -v tesseract >/dev/null 2>&1 && tesseract --list-langs 2>/dev/null | grep -qx eng; } || { \
	  echo "installing Debian's tesseract-ocr and tesseract-ocr-eng to read scanned PDF pages"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null; }

test: setup chromium ocr-tools
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# SIGKILL during build, --rebuild, add and remove, 20 trials each, then questions on the page
# during the first 5 minutes of a 20 MB upload (an hour or more in all; CI does not run it).
DATA ?= ../shared/data
reliability: setup
	$(PY) docs/bench/reliability.py --trials 20
	$(PY) docs/bench/upload_latency.py --data $(DATA) --measure-seconds 300 --trace 5 --out bench-output/upload-latency.json

# Performance figures of docs/BENCHMARKS.md and SCALE.md: ingestion against the LangChain
# baseline, the memory of a 15-minute build over a 2 GB folder and its resume (about 20 minutes;
# the folder is written under BIGFOLDER_WORK, which must be new or empty, and deleted after), the
# two stores side by side, the folder store at a million chunks (hours on a laptop; not part of
# CI). make reliability runs the kill trials and the upload benchmark.
BIGFOLDER_WORK ?= /tmp/bigfolder-bench
bench: setup
	$(PY) docs/bench/ingest.py
	$(PY) docs/bench/bigfolder.py --data $(DATA) --work $(BIGFOLDER_WORK) --size 2G --budget 900 --resume-budget 120 --embedder onnx-int8 --out bench-output/bigfolder-2g.json
	$(PY) docs/bench/stores.py --scifact $(DATA)/beir-scifact
	$(PY) docs/bench/coldstart.py --runs 5 --out bench-output/coldstart.json
	$(PY) docs/bench/latency.py --early-exit 1.0 0.7 --repeat 5
	$(PY) docs/bench/latency.py --questions $(DATA)/squad/dev-v1.1.json --limit 200 --seed 0 --early-exit 0.7 --repeat 2 --split
	$(PY) docs/bench/scale.py --data $(DATA) --chunks 10000 --out bench-output/scale-10k.json
	$(PY) docs/bench/scale.py --data $(DATA) --chunks 100000 --out bench-output/scale-100k.json
	$(PY) docs/bench/scale.py --data $(DATA) --chunks 1000000 --out bench-output/scale-1m.json --work bench-output/scale-1m
	$(PY) docs/bench/scale.py --reader bench-output/scale-1m/index bench-output/scale-1m/queries.npz --cold --passes 3
	$(PY) docs/bench/scale_plot.py bench-output/scale-10k.json bench-output/scale-100k.json bench-output/scale-1m.json --png bench-output/scale.png

clean:
	rm -rf .index test-output eval-output bench-output
