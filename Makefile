# One-command setup and checks. `make test` installs what it needs on a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch and torchvision pinned to the builds that pip finds on this machine's disk (see README).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install test lint demo clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[test]' $(TORCH_PINS)
	touch $(STAMP)

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

# The main job on the embedded default: the example frames in the `vintage` style, plus a
# before/after contact sheet.
demo: install
	$(VENV)/bin/posterforge translate examples/frames --style vintage --out demo-out/vintage \
		--overwrite --contact-sheet demo-out/vintage-before-after.jpg
	@echo "contact sheet: demo-out/vintage-before-after.jpg"

clean:
	rm -rf $(VENV) build dist .pytest_cache demo-out
