# Every target sets up what it needs, idempotently, in a repo-local .venv.
#   make demo   - set up, then train a digits classifier end to end
#   make demo-ddp - the same on 2 CPU processes with torchrun (data-parallel)
#   make test   - set up, then run every test (cargo + pytest)
#   make test-wheel - the pytest suite against the built wheel instead of the in-place build
#   make bench  - set up, then the side-by-side benchmarks (floDl's ten models: benches/suite.py,
#                 results in benches/results/) and criterion benches
#   make bench-gpu - floDl's ten models at floDl's sizes on CUDA (exits with a message without one)
#   make lint   - cargo fmt --check, clippy -D warnings, ruff, mypy, stubtest (_core.pyi vs the build)
#   make chromium - headless Chromium for the HTML report test (apt; skipped when present)

SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
VPY := $(VENV)/bin/python
STAMPS := $(CURDIR)/.stamps
# torch-sys and our build script find libtorch through the venv's torch.
export PATH := $(VENV)/bin:$(PATH)
export VIRTUAL_ENV := $(VENV)
export LIBTORCH_USE_PYTORCH := 1
export PYO3_PYTHON := $(VPY)

.PHONY: demo demo-ddp test test-wheel bench bench-gpu lint stubtest develop setup clean-venv graphviz chromium

setup: $(STAMPS)/venv

$(STAMPS)/venv: requirements-dev.txt
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -r requirements-dev.txt
	@mkdir -p $(STAMPS) && touch $@

# Graphviz's `dot` renders Graph.svg(); installed with apt-get when missing
# (needs root; without it the svg test skips).
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz; \
		else \
			echo "graphviz: 'dot' not found and cannot apt-get install it (not root); svg tests will skip"; \
		fi; }

# The test build: the wheel's features plus the test hooks (`test-hooks`).
develop: setup
	$(VENV)/bin/maturin develop --release --quiet --features python,test-hooks

demo: develop
	$(VPY) examples/digits.py

# Data-parallel training on 2 CPU processes (torchrun, gloo).
demo-ddp: develop
	OMP_NUM_THREADS=1 $(VPY) -m torch.distributed.run --standalone --nproc_per_node=2 examples/distributed.py

# The monitor's HTML report test renders the page in headless Chromium (the test
# skips without it). Installing takes about 30 s on Debian 12; needs root.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

test: develop graphviz chromium
	cargo test --release --lib
	$(VPY) -m pytest -q tests

# The same suite against the built wheel, installed into a scratch folder
# that shadows the in-place build (CI runs both).
WHEELTEST := $(CURDIR)/.wheeltest
test-wheel: develop
	rm -rf $(WHEELTEST)
	$(VENV)/bin/maturin build --release --quiet -o $(WHEELTEST)/dist
	$(VPY) -m pip install --quiet --no-deps --target $(WHEELTEST)/site $(WHEELTEST)/dist/*.whl
	PYTHONPATH=$(WHEELTEST)/site $(VPY) -c "import ferrotorch; assert ferrotorch.__file__.startswith('$(WHEELTEST)/site'), ferrotorch.__file__"
	PYTHONPATH=$(WHEELTEST)/site $(VPY) -m pytest -q -p no:cacheprovider tests

bench: develop
	$(VPY) benches/suite.py
	$(VPY) benches/vs_pytorch.py
	$(VPY) benches/vs_flodl.py
	$(VPY) benches/loss_bench.py
	$(VPY) benches/data_bench.py
	$(VPY) benches/optim_bench.py
	$(VPY) benches/ddp_bench.py
	$(VPY) benches/torch_pieces_bench.py
	$(VPY) benches/grad_checkpoint_bench.py
	$(VPY) benches/compile_graph_bench.py
	cargo bench --bench fused_adam
	cargo bench --bench optimizers
	cargo bench --bench graph_dispatch

bench-gpu: develop
	$(VPY) benches/suite.py --device cuda --out benches/results/gpu

# stubtest imports the extension, so lint builds it in place first (develop).
# The stub python/ferrotorch/_core.pyi is hand-written; stubtest fails on any
# drift from the runtime (tools/stubtest_allowlist.txt says why each exception).
lint: develop
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	cargo clippy --release --features python --lib -- -D warnings
	$(VENV)/bin/ruff check python tests benches examples tools
	$(VENV)/bin/ruff format --check python tests benches examples tools
	$(VPY) -m mypy python/ferrotorch
	$(MAKE) --no-print-directory stubtest

# Only the stub check (_core.pyi and the package's modules), against the in-place build (`make develop` first).
stubtest:
	$(VPY) -m mypy.stubtest ferrotorch --allowlist tools/stubtest_allowlist.txt

clean-venv:
	rm -rf $(VENV) $(STAMPS)
