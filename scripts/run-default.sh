#!/usr/bin/env bash
# Installs dependencies, builds the release preset and runs the main job: `foundry train` on its
# built-in default recipe. Extra arguments go to `foundry train` (a recipe, overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release
cmake --build --preset release --target foundry
./build/release/foundry train "$@"
