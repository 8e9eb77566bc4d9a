#!/usr/bin/env bash
# Regenerate the pinned, hashed lock files the container image installs from.
# Run from anywhere after changing dependencies in pyproject.toml: requirements/compile.sh
# Uses uv (https://github.com/astral-sh/uv): `pip install uv`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The image runs Debian bookworm's CPython 3.11 on x86_64 (glibc 2.36).
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28
        --annotation-style line --custom-compile-command requirements/compile.sh)
uv pip compile "${common[@]}" pyproject.toml --extra tensorflow -o requirements/full.lock
uv pip compile "${common[@]}" pyproject.toml -o requirements/slim.lock
# setuptools/wheel build the czann-ci wheel inside the builder stage only.
printf 'setuptools>=68\nwheel>=0.42\n' | uv pip compile "${common[@]}" - -o requirements/build.lock
