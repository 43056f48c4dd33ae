# One-command setup and checks. `make test` installs what it needs on a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch and torchvision pinned to the builds that pip finds on this machine's disk (see README).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install browser test test-quick lint demo demo-train demo-model demo-stylegan clean

install: $(STAMP) browser

# Debian's chromium, for the run report's browser test (tests/test_report_browser.py), where it is
# missing and apt can install it; never a failure (the test skips, saying why, without it).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ command -v apt-get >/dev/null 2>&1 && \
	  { $(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { $(SUDO) apt-get update -q >/dev/null 2>&1 && \
	      $(SUDO) apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	echo "note: chromium not installed (no apt-get, or no rights): the report's browser test skips"

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[test,onnx,video-metrics]' $(TORCH_PINS)
	touch $(STAMP)

# Bytecode is cached for the suite's many Python processes even where the environment turns it
# off (PYTHONDONTWRITEBYTECODE=1 here made collection alone 14 s instead of 5).
unexport PYTHONDONTWRITEBYTECODE

# Everything: lint, the quick suite, then the slow tests (real training, process fleets, stress).
test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m slow

# The quick suite alone (a plain `pytest`): about 3 minutes on 2 cores (the target is 1: issue 20).
test-quick: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

# The main job on the embedded default: the example frames in the `vintage` style, plus a
# before/after contact sheet.
demo: install
	$(VENV)/bin/posterforge translate examples/frames --style vintage --out demo-out/vintage \
		--overwrite --contact-sheet demo-out/vintage-before-after.jpg
	@echo "contact sheet: demo-out/vintage-before-after.jpg"
	$(PY) examples/make_clip.py examples/frames demo-out/clip.mp4
	$(VENV)/bin/posterforge translate demo-out/clip.mp4 --style vintage \
		--out demo-out/clip-vintage.mp4 --overwrite --quiet > /dev/null
	@echo "video: demo-out/clip.mp4 -> demo-out/clip-vintage.mp4"
	$(VENV)/bin/posterforge generate --genre horror -n 64 --out demo-out/posters \
		--grid demo-out/horror-grid.png --quiet > /dev/null
	@echo "poster grid: demo-out/horror-grid.png"
	$(VENV)/bin/posterforge generate --model posters-stylegan --genre horror -n 64 \
		--out demo-out/posters-stylegan --grid demo-out/horror-grid-stylegan.png --quiet > /dev/null
	@echo "StyleGAN poster grid: demo-out/horror-grid-stylegan.png"

# A tiny CycleGAN run on two made-up colour domains, scored on held-out images as it trains
# (DEMO_STEPS steps, FID every DEMO_EVAL), then its report: demo-out/train-report.html.
DEMO_STEPS ?= 200
DEMO_EVAL  ?= 100
demo-train: install
	$(PY) examples/make_domains.py demo-domains
	rm -rf runs/demo-train
	$(VENV)/bin/posterforge train translator --a demo-domains/a --b demo-domains/b \
		--name demo-train --preset tiny --max-steps $(DEMO_STEPS) --seed 0 --device cpu \
		--out runs/demo-train --overwrite --set eval_images=10 --set train.eval_every=$(DEMO_EVAL) \
		--set 'train.best_by="fid_a2b"' --set train.sample_every=10
	$(VENV)/bin/posterforge report runs/demo-train --out demo-out/train-report.html --overwrite
	@echo "run report: demo-out/train-report.html (open it in a browser)"

# Rebuild the shipped demo poster generator from nothing: the synthetic demo posters, training
# with the posters-demo recipe, then copying the result into the plugin (see docs/generate.md).
demo-model: install
	$(PY) -m posterforge_genre_cgan.demo_data make demo-posters --per-genre 150 --seed 0
	$(VENV)/bin/posterforge train generator --data demo-posters \
		--labels demo-posters/labels.csv --name posters-demo-new --preset posters-demo \
		--seed 0 --device cpu --out runs/posters-demo --overwrite
	$(PY) -m posterforge_genre_cgan.demo_data ship runs/posters-demo

# The same for the StyleGAN demo (posters-stylegan): the same data, its own recipe, for the
# CPU time the cGAN demo had (38 CPU-minutes: 900 steps on the 2-core machine), then shipped.
demo-stylegan: install
	test -d demo-posters || $(PY) -m posterforge_genre_cgan.demo_data make demo-posters \
		--per-genre 150 --seed 0
	OMP_NUM_THREADS=1 $(VENV)/bin/posterforge train generator --arch stylegan \
		--data demo-posters --labels demo-posters/labels.csv --name posters-stylegan-new \
		--preset posters-demo --max-steps 900 --seed 0 --device cpu --out runs/posters-stylegan \
		--overwrite
	$(PY) -m posterforge_stylegan.demo ship runs/posters-stylegan

clean:
	rm -rf $(VENV) build dist .pytest_cache demo-out demo-posters demo-domains runs
