#!/usr/bin/env bash
# Make the local stand-in for debian:bookworm-slim in the engine at $DOCKER_HOST, tagged
# localbase:bookworm (no registry is reachable here).
#
# The debootstrap root file system is cached as a tarball keyed by date (it holds no certificate).
# The host's extra CA certificates (an intercepting HTTPS proxy may sit between pip and PyPI) are
# copied into a thin layer on top at test time, every time, and never written to the repository.
set -euo pipefail

: "${DOCKER_HOST:?set DOCKER_HOST to the private engine}"
DOCKER=/usr/bin/docker
CACHE="${CZANN_BASE_CACHE:-/var/tmp/czann-ci-cache}"
TAG="${1:-localbase:bookworm}"
RAW="$CACHE/localbase-bookworm-slim-$(date -u +%Y%m%d).tar"
SOURCES=/etc/apt/sources.list.d/debian.sources

root=""
ctx=""
cleanup() { [[ -n "$root" ]] && rm -rf "$root"; [[ -n "$ctx" ]] && rm -rf "$ctx"; return 0; }
trap cleanup EXIT

mkdir -p "$CACHE"
if [[ ! -s "$RAW" ]]; then
  mirror="$(awk '/^URIs:/ {print $2; exit}' "$SOURCES")"
  root="$(mktemp -d /var/tmp/czann-root.XXXXXX)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; exit 1; }
  rm -f "$root.log"
  cp "$SOURCES" "$root/etc/apt/sources.list.d/debian.sources"
  rm -f "$root/etc/apt/sources.list"
  # Match debian:bookworm-slim: no documentation, manuals or translations (now or from later
  # apt-get installs), no package lists, no downloaded packages.
  cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/groff/* "$root"/usr/share/lintian/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$root" -cf "$RAW.part" .
  mv "$RAW.part" "$RAW"
  find "$CACHE" -name 'localbase-bookworm-*.tar*' ! -path "$RAW" -delete
fi

raw_tag="${TAG%%:*}-raw:$(basename "$RAW" .tar | sed 's/^localbase-bookworm-//')"
if ! $DOCKER image inspect "$raw_tag" >/dev/null 2>&1; then
  $DOCKER import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$RAW" "$raw_tag" >/dev/null
fi

# Older snapshots of the base are of no further use.
$DOCKER images --format '{{.Repository}}:{{.Tag}}' "${TAG%%:*}-raw" | grep -vxF "$raw_tag" \
  | xargs -r $DOCKER rmi >/dev/null 2>&1 || true

ctx="$(mktemp -d /tmp/czann-ca.XXXXXX)"
mkdir "$ctx/certs"
shopt -s nullglob
certs=(/usr/local/share/ca-certificates/*.crt)
(( ${#certs[@]} )) && cp "${certs[@]}" "$ctx/certs/"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $raw_tag
COPY certs/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
DOCKERFILE
$DOCKER build -q --network host -t "$TAG" "$ctx" >/dev/null
echo "$TAG"
