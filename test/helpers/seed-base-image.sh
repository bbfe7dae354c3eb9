#!/usr/bin/env bash
# Test-environment step, never part of what users get: when no registry can serve the image that
# templates/base starts FROM, build an equivalent root filesystem from Debian's packages with
# debootstrap and `docker import` it under that tag. On a machine that can pull, this does nothing
# because the image is pulled (or already present).
set -euo pipefail
image="${1:-debian:trixie-slim}"
suite="${2:-trixie}"
mirror="${SBX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then exit 0; fi
if timeout 60 docker pull -q "$image" >/dev/null 2>&1; then exit 0; fi

command -v debootstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
root=$(mktemp -d /tmp/sbx-seed-XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "seeding $image from Debian $suite with debootstrap (no registry reachable)" >&2
keyring_opt=()
if ! gpg --no-default-keyring --keyring /usr/share/keyrings/debian-archive-keyring.gpg --list-keys 2>/dev/null | grep -qi "trixie\|Debian 13"; then
  keyring_opt=(--no-check-gpg)
fi
debootstrap --variant=minbase "${keyring_opt[@]}" "$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -30 "$root.log" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - "$image" >/dev/null
rm -f "$root.log"
echo "seeded $image" >&2
