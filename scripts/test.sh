#!/usr/bin/env bash
# Installs dependencies, builds the release preset and runs every test except those labelled
# slow, then builds the address-sanitizer preset and runs the unit tests under it. This is the
# README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release
cmake --build --preset release
ctest --test-dir build/release --output-on-failure -j "$(nproc)" -LE slow
cmake --preset asan
cmake --build --preset asan
ctest --preset asan -j "$(nproc)"
