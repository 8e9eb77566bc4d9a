#!/usr/bin/env bash
# Regenerate the pinned, hashed lock files the container images install from.
# Run from anywhere after changing dependencies in pyproject.toml: requirements/compile.sh
# Uses uv (https://github.com/astral-sh/uv): `pip install uv`. Existing pins are kept where they
# still satisfy pyproject.toml (uv prefers the versions already in the output file).
#
# One universal resolution per lock covers both image platforms, linux/amd64 and linux/arm64
# (Debian bookworm's CPython 3.11, glibc 2.36): the environments are [tool.uv] environments in
# pyproject.toml, the hashes cover every file of each pinned version, x86_64 and aarch64 wheels
# alike, and a line that only one platform installs carries its marker (tensorflow-cpu on
# x86_64, tensorflow on aarch64). tests/test_release_pipeline.py downloads every pinned wheel for
# both platforms with --require-hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--universal --generate-hashes --python-version 3.11 --annotation-style line
        --custom-compile-command requirements/compile.sh)
# full: also the images extra (czann predict / evaluate on CZI and TIFF files)
uv pip compile "${common[@]}" pyproject.toml --extra tensorflow --extra bioimageio --extra images -o requirements/full.lock
# slim: ONNX files only (bioimage.io packages take the full image, as the action's `image: auto` does)
uv pip compile "${common[@]}" pyproject.toml -o requirements/slim.lock
# setuptools/wheel build the czann-ci wheel inside the builder stage only.
printf 'setuptools>=77\nwheel>=0.42\n' | uv pip compile "${common[@]}" - -o requirements/build.lock
