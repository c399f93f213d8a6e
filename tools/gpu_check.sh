#!/usr/bin/env bash
# Every GPU check in one device-tool call, for a session lent a GPU host
# (no Rust, no network there). Prepare .gpu/ here first:
#   maturin build --release && mkdir -p .gpu && cp target/wheels/*.whl .gpu/
#   .venv/bin/python -m pip download -q -d .gpu pytest        # pytest and its deps, as wheels
# then run this script with carry [".gpu"]. It installs both into /tmp/site,
# runs the tests that need CUDA (the `cuda` mark, plus the CUDA cases of the
# suites that skip without it), then the CUDA benchmark.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, ferrotorch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ferrotorch', ferrotorch.__file__)"
# The CUDA-marked tests first (they are short), then every test whose name says cuda.
timeout 300 python3 -m pytest -q -p no:cacheprovider -m cuda tests 2>&1 | tail -30
timeout 200 python3 -m pytest -q -p no:cacheprovider -k cuda -m "not cuda" tests 2>&1 | tail -15
# The figures of issue 17: interleaved rounds, kernel-time floor, peak memory.
timeout "${BENCH_TIMEOUT:-360}" python3 benches/vs_pytorch.py --device cuda 2>&1 | tail -60
