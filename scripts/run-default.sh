#!/usr/bin/env bash
# Installs dependencies, builds the release preset and runs the main job: `foundry train` on its
# built-in default recipe. Extra arguments go to `foundry train` (a recipe, overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
# OpenMP threads sleep instead of spinning while they wait: on a machine shared with other
# work (or tests running side by side) spinning threads take the cores the working ones need
# (bench/README.md measures it); on an idle machine the cost is ~1-2%. Set it to override.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
bash scripts/install-deps.sh
cmake --preset release
cmake --build --preset release --target foundry
./build/release/foundry train "$@"
