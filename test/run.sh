#!/usr/bin/env bash
# The one test command (`npm test`). On a fresh machine it first brings what the suite needs:
# Debian's docker.io (dockerd started when no engine answers), debootstrap and tmux, an
# unprivileged test user in the docker group, and - only where no registry can serve it - the base
# image the templates start FROM, seeded from Debian's packages. Then lint, build, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'test/run.sh: %s\n' "$*" >&2; }

if [ "$(id -u)" = 0 ]; then
  missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v tmux >/dev/null || missing+=(tmux)
  # The second engines of test/e2e/engines.test.ts and the Podman pass below.
  command -v podman >/dev/null || missing+=(podman)
  command -v sshd >/dev/null || missing+=(openssh-server)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v curl >/dev/null || missing+=(curl)
  # The rootless Docker and Podman of test/helpers/rootless-engines.sh.
  command -v rootlesskit >/dev/null || missing+=(rootlesskit)
  command -v slirp4netns >/dev/null || missing+=(slirp4netns)
  command -v fuse-overlayfs >/dev/null || missing+=(fuse-overlayfs)
  command -v newuidmap >/dev/null || missing+=(uidmap)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
  fi
fi

if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "no Docker Engine answers and only root can start one here"; exit 1; }
  log "no engine answered: starting dockerd"
  nohup dockerd >/tmp/sbx-test-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 /tmp/sbx-test-dockerd.log >&2; exit 1; }
fi

if [ "$(id -u)" = 0 ]; then
  # The unprivileged host user of the ownership tests (test/helpers/cli.ts: TEST_USER).
  getent group docker >/dev/null || groupadd docker
  id sbxtest >/dev/null 2>&1 || useradd --create-home --uid 4242 --user-group --groups docker --shell /bin/bash sbxtest
  # It must be able to reach the built CLI: let it traverse the folders above the checkout.
  dir=$PWD
  while [ "$dir" != / ]; do chmod o+x "$dir"; dir=$(dirname "$dir"); done
  bash test/helpers/seed-base-image.sh debian:trixie-slim trixie
fi

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build >/dev/null
npx biome check .
# The build regenerates the command reference (oclif readme): it must be committed current.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet -- docs/commands.md; then
  git --no-pager diff --stat -- docs/commands.md >&2
  log "docs/commands.md is out of date: commit what \`npm run build\` regenerated"
  exit 1
fi

# The product's own template images are shared by the tests and kept, like a user's: built here
# once (content-hashed: unchanged templates are not rebuilt), without the test label.
node bin/run.js template build claude gemini codex opencode copilot shell >/dev/null

export SBX_TEST_RUN="t$$"
# test/attack/: the attack suite, every class of break tried from inside a sandbox (as the agent user
# and as root), against the suite's own listeners and containers only. Not yet in the gVisor and
# Podman passes below: it has run on Docker only so far (the files skip what cannot exist there).
node --test --test-concurrency=1 dist/test/unit/ dist/test/e2e/ dist/test/attack/

# The core suite (sbx run, the lifecycle commands, the security boundary) again under gVisor: Debian's
# runsc, registered with the running engine as "runsc" (daemon.json, then SIGHUP: dockerd reloads its
# runtimes without restarting containers), chosen for every sandbox through SBX_RUNTIME. Debian 12's
# runsc (2022) needs --network=host on some machines: the sandbox still has the network namespace the
# engine made for it (its internal network); --host-uds=open lets --mount-docker-socket work. See docs/runtimes.md.
if [ "$(id -u)" = 0 ] && [ "${SBX_TEST_GVISOR:-1}" != 0 ]; then
  gvisor_skip=""
  if ! command -v runsc >/dev/null; then
    log "installing runsc (gVisor)"
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q runsc >/dev/null 2>&1; } || gvisor_skip="runsc (gVisor) cannot be installed from this machine's package sources"
  fi
  if [ -z "$gvisor_skip" ] && ! docker info --format '{{json .Runtimes}}' | grep -q '"runsc"'; then
    node -e '
      const fs = require("node:fs");
      const file = "/etc/docker/daemon.json";
      const config = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
      config.runtimes = { ...config.runtimes, runsc: { path: process.argv[1], runtimeArgs: ["--network=host", "--host-uds=open"] } };
      fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
    ' "$(command -v runsc)"
    kill -HUP "$(cat /var/run/docker.pid)"
    for _ in $(seq 1 20); do docker info --format '{{json .Runtimes}}' | grep -q '"runsc"' && break; sleep 0.5; done
    docker info --format '{{json .Runtimes}}' | grep -q '"runsc"' || gvisor_skip="the engine did not load the runsc runtime from /etc/docker/daemon.json"
  fi
  if [ -z "$gvisor_skip" ] && ! probe=$(docker run --rm --runtime runsc debian:trixie-slim true 2>&1); then
    gvisor_skip="this machine cannot run gVisor: $probe"
  fi
  if [ -n "$gvisor_skip" ]; then
    log "gVisor pass skipped: $gvisor_skip"
  else
    SBX_RUNTIME=runsc SBX_TEST_RUN="g$$" node --test --test-concurrency=1 dist/test/e2e/run.test.js dist/test/e2e/lifecycle.test.js dist/test/e2e/security.test.js dist/test/e2e/inner-sandbox.test.js
  fi
fi

# The core suite (sbx run, the lifecycle commands, the security boundary) and disk housekeeping again, against Podman: Debian's podman with its
# Docker-compatible API service on a unix socket, found through DOCKER_HOST like any engine.
if [ "$(id -u)" = 0 ] && [ "${SBX_TEST_PODMAN:-1}" != 0 ]; then
  podman_sock=/run/podman/podman.sock
  if ! curl -sf --unix-socket "$podman_sock" http://d/_ping >/dev/null 2>&1; then
    log "starting Podman's API service"
    mkdir -p /run/podman
    nohup podman system service --time=0 "unix://$podman_sock" >/tmp/sbx-test-podman.log 2>&1 &
    for _ in $(seq 1 30); do curl -sf --unix-socket "$podman_sock" http://d/_ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  # The test user reaches it through the docker group, as it reaches Docker's socket.
  chgrp docker "$podman_sock" && chmod 660 "$podman_sock"
  # Two engines on one host: Docker's FORWARD policy (DROP) also drops the traffic inside Podman's
  # internal networks (sandbox <-> egress proxy); a host running Podman alone needs no such rule.
  iptables -C FORWARD -i podman+ -o podman+ -j ACCEPT 2>/dev/null || iptables -I FORWARD -i podman+ -o podman+ -j ACCEPT
  podman image exists debian:trixie-slim || docker save debian:trixie-slim | podman load >/dev/null
  export DOCKER_HOST="unix://$podman_sock" SBX_TEST_RUN="p$$"
  node bin/run.js template build claude gemini codex opencode copilot shell >/dev/null
  node --test --test-concurrency=1 dist/test/e2e/run.test.js dist/test/e2e/lifecycle.test.js dist/test/e2e/security.test.js dist/test/e2e/disk.test.js
  # --docker on Podman (its seccomp profile goes as a file): the engine inside at work, its way out, a pull, removal.
  node --test --test-concurrency=1 --test-name-pattern='creates a sandbox|runs, builds|egress proxy|sbx rm' dist/test/e2e/docker-inside.test.js
fi
