#!/usr/bin/env bash
# A second Docker Engine standing in for a remote machine (test environment only, run as root):
#   - its own network namespace (its own bridges and iptables; reached over a veth, 10.250.0.2),
#   - its own mount namespace, where HIDDEN (the parent of the remote tests' workspaces) is an empty
#     tmpfs: like a real remote host, it cannot see the workspace,
#   - its own data root, TLS on tcp://10.250.0.2:2376 with certificates made here (server and client,
#     verified both ways), and a unix socket for the test's own seeding.
# The base template image is copied over from the local engine (no registry can be reached here).
#
#   remote-engine.sh start HIDDEN    prints the folder holding ca.pem, cert.pem and key.pem
#   remote-engine.sh stop
set -euo pipefail
cd "$(dirname "$0")/../.."
state=/run/sbx-remote
certs=$state/certs
ns=sbxremote
remote=(docker -H "unix://$state/docker.sock")
log() { printf 'remote-engine.sh: %s\n' "$*" >&2; }

stop() {
  if [ -f "$state/dockerd.pid" ]; then
    kill "$(cat "$state/dockerd.pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null || break; sleep 0.2; done
    rm -f "$state/dockerd.pid"
  fi
  ip link del sbxr0 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
}

make_certs() {
  mkdir -p "$certs"
  [ -f "$certs/key.pem" ] && return
  (
    cd "$certs"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=sbx-test-ca -keyout ca-key.pem -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=sbx-remote -keyout server-key.pem -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:10.250.0.2,IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile server.ext -out server.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=sbx-client -keyout key.pem -out client.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile client.ext -out cert.pem 2>/dev/null
    chmod 644 ./*.pem
  )
}

start() {
  local hidden=$1
  stop
  mkdir -p "$state" "$hidden"
  make_certs
  ip netns add "$ns"
  ip link add sbxr0 type veth peer name sbxr1
  ip link set sbxr1 netns "$ns"
  ip addr add 10.250.0.1/30 dev sbxr0
  ip link set sbxr0 up
  ip -n "$ns" addr add 10.250.0.2/30 dev sbxr1
  ip -n "$ns" link set sbxr1 up
  ip -n "$ns" link set lo up
  # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup mounts dockerd needs.
  nsenter --net=/run/netns/$ns unshare --mount --propagation private sh -c "
    mount -t tmpfs sbx-remote-hidden '$hidden'
    exec dockerd --data-root /var/lib/sbx-remote --exec-root $state/exec --pidfile $state/dockerd.pid \
      --cgroup-parent sbx-remote -H unix://$state/docker.sock -H tcp://0.0.0.0:2376 \
      --tlsverify --tlscacert $certs/ca.pem --tlscert $certs/server.pem --tlskey $certs/server-key.pem
  " >"$state/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do "${remote[@]}" info >/dev/null 2>&1 && break; sleep 0.5; done
  "${remote[@]}" info >/dev/null 2>&1 || { tail -20 "$state/dockerd.log" >&2; exit 1; }
  # The base template (the shell's) as the local engine built it: same content-hashed tag, no rebuild.
  local id tags
  id=$(docker image inspect --format '{{.Id}}' sbx/base:latest)
  tags=$(docker images sbx/base --format '{{.Repository}}:{{.Tag}} {{.ID}}' | awk -v id="${id#sha256:}" 'index(id, $2) == 1 {print $1}')
  if [ "$("${remote[@]}" image inspect --format '{{.Id}}' sbx/base:latest 2>/dev/null)" != "$id" ]; then
    log "copying sbx/base to the remote engine"
    # shellcheck disable=SC2086
    docker save $tags | "${remote[@]}" load >/dev/null
  fi
  echo "$certs"
}

case "${1:-}" in
  start) start "${2:?the folder the remote engine must not see}" ;;
  stop) stop ;;
  *) echo "usage: $0 start HIDDEN | stop" >&2; exit 2 ;;
esac
