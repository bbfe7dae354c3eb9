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
# The build regenerates the README's command reference (oclif readme): it must be committed current.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet -- README.md; then
  git --no-pager diff --stat -- README.md >&2
  log "README.md's command reference is out of date: commit what \`npm run build\` regenerated"
  exit 1
fi

# The product's own template images are shared by the tests and kept, like a user's: built here
# once (content-hashed: unchanged templates are not rebuilt), without the test label.
node bin/run.js template build claude gemini codex opencode copilot shell >/dev/null

export SBX_TEST_RUN="t$$"
node --test --test-concurrency=1 dist/test/unit/ dist/test/e2e/
