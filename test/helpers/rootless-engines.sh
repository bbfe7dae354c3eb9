#!/usr/bin/env bash
# Rootless Docker and rootless Podman of an unprivileged user (test environment only, run as root),
# set up as that user would, each under the user's own runtime folder:
#   - /dev/net/tun and /dev/fuse usable by users (0666, the distributions' default; these machines
#     ship them root-only), and subordinate IDs for the user,
#   - Podman's storage on fuse-overlayfs (left to itself here it picks vfs, which copies every layer),
#   - Docker's own dockerd-rootless.sh (rootlesskit, slirp4netns) on $XDG_RUNTIME_DIR/docker.sock and
#     `podman system service` on $XDG_RUNTIME_DIR/podman/podman.sock, started unless they answer,
#   - the base image the templates start FROM loaded into each (nothing can be pulled here).
#
#   rootless-engines.sh USER    prints the two engines' DOCKER_HOST values, Docker's first
set -euo pipefail
unset DOCKER_HOST
user=$1
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
run=/run/user/$uid
log() { printf 'rootless-engines.sh: %s\n' "$*" >&2; }
# Detached (detach=1): in a session of its own, so that nothing ending the caller's process group ends it.
as_user() {
  ${detach:+setsid} runuser -u "$user" -- env -i HOME="$home" USER="$user" XDG_RUNTIME_DIR="$run" \
    PATH=/usr/share/docker.io/contrib:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@"
}
start_as_user() {
  local log=$1
  shift
  detach=1 as_user "$@" >"$log" 2>&1 </dev/null &
}
answers() { curl -sf --unix-socket "$1" http://d/_ping >/dev/null 2>&1; }

chmod 666 /dev/net/tun /dev/fuse
grep -q "^$user:" /etc/subuid || usermod --add-subuids 200000-265535 "$user"
grep -q "^$user:" /etc/subgid || usermod --add-subgids 200000-265535 "$user"
docker_sock=$run/docker.sock
podman_sock=$run/podman/podman.sock
if ! answers "$docker_sock" || ! answers "$podman_sock"; then
  # Start both afresh, from a runtime folder as empty as the tmpfs a login gets: what an engine left
  # there (a machine restored from a snapshot, an engine killed) would confuse the new one.
  pkill -KILL -u "$user" 2>/dev/null || true
  sleep 0.5
  findmnt -rn -o TARGET | grep -E "^($run|$home)/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$run"
fi
install -d -m 700 -o "$user" -g "$(id -g "$user")" "$run"

storage=$home/.config/containers/storage.conf
if [ ! -f "$storage" ]; then
  as_user mkdir -p "$(dirname "$storage")"
  printf '[storage]\ndriver = "overlay"\n[storage.options.overlay]\nmount_program = "/usr/bin/fuse-overlayfs"\n' |
    as_user tee "$storage" >/dev/null
fi

if ! answers "$docker_sock"; then
  log "starting rootless Docker for $user"
  start_as_user /tmp/sbx-test-rootless-docker.log dockerd-rootless.sh
  for _ in $(seq 1 60); do answers "$docker_sock" && break; sleep 0.5; done
  answers "$docker_sock" || { tail -20 /tmp/sbx-test-rootless-docker.log >&2; exit 1; }
fi
if ! answers "$podman_sock"; then
  log "starting rootless Podman's API service for $user"
  as_user mkdir -p "$run/podman"
  start_as_user /tmp/sbx-test-rootless-podman.log podman system service --time=0 "unix://$podman_sock"
  for _ in $(seq 1 60); do answers "$podman_sock" && break; sleep 0.5; done
  answers "$podman_sock" || { tail -20 /tmp/sbx-test-rootless-podman.log >&2; exit 1; }
fi

base=debian:trixie-slim
if ! as_user docker -H "unix://$docker_sock" image inspect "$base" >/dev/null 2>&1 ||
  ! as_user podman image exists "$base"; then
  archive=$(mktemp /tmp/sbx-base-XXXXXX.tar)
  docker save "$base" -o "$archive" && chmod 644 "$archive"
  as_user docker -H "unix://$docker_sock" load -i "$archive" >/dev/null
  as_user podman load -i "$archive" >/dev/null
  rm -f "$archive"
fi
printf 'unix://%s\nunix://%s\n' "$docker_sock" "$podman_sock"
