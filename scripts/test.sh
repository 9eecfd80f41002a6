#!/usr/bin/env bash
# Installs dependencies, builds the release preset and runs every test except those labelled
# slow, then builds the address-sanitizer preset and runs the unit tests under it. This is the
# README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# OpenMP threads sleep instead of spinning while they wait: on a machine shared with other
# work (or tests running side by side) spinning threads take the cores the working ones need
# (bench/README.md measures it); on an idle machine the cost is ~1-2%. Set it to override.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
bash scripts/install-deps.sh
cmake --preset release
cmake --build --preset release
ctest --test-dir build/release --output-on-failure -j "$(nproc)" -LE slow
cmake --preset asan
cmake --build --preset asan
ctest --preset asan -j "$(nproc)"
