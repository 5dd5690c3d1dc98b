#!/usr/bin/env bash
# One go on a GPU machine: CUDA results against the CPU on a few images, then the full-size table
# (224x224, batch 128) with the peers. Extra arguments go to the timing run, e.g. --model densenet121.
# Writes results/benchmarks/benchmarks.csv and benchmarks.json; stops before timing if a check fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: torch.cuda.is_available() is False')"
python -m benchmarks --device cuda --check-only
with_peers=--with-peers
python -c "import quantus" 2>/dev/null || { echo "quantus not installed (pip install -e '.[peers]'): timing without peers"; with_peers=; }
python -m benchmarks --device cuda --size full ${with_peers} "$@"
