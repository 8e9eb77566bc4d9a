# czann-ci: convert, validate and publish ZEISS ZEN .czann models from CI.
#
# Targets:
#   full (default, last stage): Keras / SavedModel / ONNX sources; published as ghcr.io/czann-ci/czann-ci:vX.Y.Z
#   slim (`--target slim`): ONNX files, validate, inspect, publish; no TensorFlow, no bioimage.io
#     packages, no package manager; published as :vX.Y.Z-slim
#
# BASE_IMAGE is pinned by digest (a multi-platform index: linux/amd64 and linux/arm64); machines
# without Docker Hub pass a mirror or a local stand-in with --build-arg BASE_IMAGE=...
# (docs/reference/images.md, "Building the image"; tests/container/base.sh). VERSION and REVISION
# label the image; the release script (.ci/build-and-push) sets them.
ARG BASE_IMAGE=debian:bookworm-slim@sha256:7802002798b0e351323ed2357ae6dc5a8c4d0a05a57e7f4d8f97136151d3d603

# --- Python runtime shared by both targets -------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# Debian's security updates move package versions; the base image digest pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    LANG=C.UTF-8 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PATH=/opt/czann/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# --- Builder: pinned, hashed dependencies into /opt/czann (a venv without pip) ------------------
FROM runtime AS builder
ARG DEBIAN_FRONTEND=noninteractive
# A PyPI mirror for the build only (--build-arg PIP_INDEX_URL=https://mirror/simple); unset, pip uses
# PyPI. Either way every file must match a hash in the lock. Never part of the final images.
ARG PIP_INDEX_URL
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv binutils \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
# Run after each dependency install: what no czann command loads. onnxruntime's wheel carries its C API
# library (34 MB) beside the Python binding, which does not link it, and its model-optimization tools
# (transformers, quantization, tools: 10 MB); onnx carries its backend conformance suite
# (onnx/backend/test, 17 MB); numpy and others ship their own test suites (tf2onnx's as a top-level
# package `tests`).
ENV CZANN_PRUNE='site=/opt/czann/lib/python3.11/site-packages \
 && rm -f "$site"/onnxruntime/capi/libonnxruntime.so* \
 && rm -rf "$site"/onnxruntime/transformers "$site"/onnxruntime/quantization "$site"/onnxruntime/tools \
   "$site"/onnx/backend/test \
 && find "$site" -mindepth 1 -type d -name tests -prune -exec rm -rf {} +'
COPY requirements/build.lock /src/requirements/build.lock
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps -r /src/requirements/build.lock \
 && python3 -m venv --without-pip /opt/czann

# The czann-ci wheel, in its own stage so that a source change does not re-install the dependencies.
FROM builder AS wheel
COPY pyproject.toml README.md* LICENSE /src/
COPY czann_ci /src/czann_ci
# pyproject names README.md as the long description; a context without it still builds.
RUN { test -f /src/README.md || echo "czann-ci" >/src/README.md; } \
 && /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels /src

FROM builder AS builder-slim
ARG PIP_INDEX_URL
COPY requirements/slim.lock /src/requirements/slim.lock
RUN /opt/build/bin/pip --python /opt/czann/bin/python install --require-hashes --no-deps \
      -r /src/requirements/slim.lock \
 && sh -c "$CZANN_PRUNE"
COPY --from=wheel /wheels /wheels
RUN /opt/build/bin/pip --python /opt/czann/bin/python install --no-deps /wheels/*.whl

FROM builder AS builder-full
ARG PIP_INDEX_URL
COPY requirements/full.lock /src/requirements/full.lock
# TensorFlow ships 290 MB of C++ headers (only for compiling custom ops) and unstripped shared
# libraries; dropping both keeps the image about 0.5 GB smaller and changes nothing at run time.
# TensorFlow also requires libclang (62 MB), which nothing imports (only its own bindings load it),
# and Keras ships its unit tests beside its modules (*_test.py, 12 MB). pylibCZIrw (the images extra)
# requires cmake (86 MB), which nothing here runs or imports; scikit-image requires networkx (for
# skimage.graph) and ships sample images (skimage/data), neither of which czann predict or evaluate loads
# (checked: networkx is not in sys.modules after an evaluation). The other wheels' shared libraries are
# stripped too (scipy, numpy, h5py: 14 MB of symbols), but not the libraries auditwheel vendored into
# *.libs/, which patchelf rewrote (stripped, numpy's OpenBLAS no longer loads). That keeps the full
# image under its 1.3 GB budget with the images extra in it.
RUN /opt/build/bin/pip --python /opt/czann/bin/python install --require-hashes --no-deps \
      -r /src/requirements/full.lock \
 && sh -c "$CZANN_PRUNE" \
 && site=/opt/czann/lib/python3.11/site-packages \
 && rm -rf "$site/tensorflow/include" "$site/clang" "$site/cmake" "$site/networkx" \
 && find "$site/skimage/data" -type f ! -name "*.py" -delete \
 && rm -f /opt/czann/bin/cmake /opt/czann/bin/ccmake /opt/czann/bin/cpack /opt/czann/bin/ctest \
 && find "$site/keras" \( -name '*_test.py' -o -name '*_test.cpython-*.pyc' \) -delete \
 && find "$site" -name '*.so*' -type f -not -path '*.libs/*' -exec strip --strip-unneeded {} +
COPY --from=wheel /wheels /wheels
RUN /opt/build/bin/pip --python /opt/czann/bin/python install --no-deps /wheels/*.whl

# --- slim: ONNX only ----------------------------------------------------------------------------
# The slim image exists to start quickly: a step that only pulls it spends its time unpacking bytes.
# Nothing in it installs packages, so apt, perl and what only they use go, purged through dpkg so that
# its database, which image scanners and SBOM tools read, stays true. The documentation goes too (the
# copyright files stay), and glibc's iconv modules, which Python does not use. Then the tree is copied
# onto an empty image, as the removals would otherwise only add a layer on top of the base's.
FROM runtime AS slim-root
RUN dpkg --purge --force-remove-essential --force-depends \
      apt libapt-pkg6.0 gpgv debian-archive-keyring libgnutls30 libp11-kit0 libtasn1-6 libnettle8 \
      libhogweed6 libidn2-0 libunistring2 perl-base adduser passwd login e2fsprogs libss2 \
      libsemanage2 libsemanage-common \
 && find /usr/share/doc -mindepth 1 ! -name copyright ! -type d -delete \
 && rm -rf /usr/lib/*-linux-gnu/gconv /var/cache/debconf/*-old /var/log/*

FROM scratch AS slim
# The whole tree on purpose: the flattening above.
# hadolint ignore=DL3067
COPY --from=slim-root / /
# FROM scratch starts without the runtime stage's environment: the same values again.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    LANG=C.UTF-8 \
    PATH=/opt/czann/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CZANN_IMAGE_VARIANT=slim
COPY --from=builder-slim /opt/czann /opt/czann
COPY entrypoint /usr/local/bin/czann-entrypoint
ENTRYPOINT ["/usr/local/bin/czann-entrypoint"]
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="czann-ci (slim, ONNX only)" \
      org.opencontainers.image.description="Validate, inspect, convert ONNX models to ZEISS ZEN .czann and publish them from CI" \
      org.opencontainers.image.source="https://github.com/czann-ci/czann-ci" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="debian:bookworm-slim"

# --- full: Keras 3 / TensorFlow / ONNX (default target; built by the action at a ref that is no release)
FROM runtime AS full
COPY --from=builder-full /opt/czann /opt/czann
COPY entrypoint /usr/local/bin/czann-entrypoint
ENTRYPOINT ["/usr/local/bin/czann-entrypoint"]
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="czann-ci" \
      org.opencontainers.image.description="Convert Keras 3, SavedModel and ONNX models to validated ZEISS ZEN .czann files and publish them from CI" \
      org.opencontainers.image.source="https://github.com/czann-ci/czann-ci" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
