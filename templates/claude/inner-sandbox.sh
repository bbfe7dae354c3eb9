#!/bin/sh
# --inner-sandbox: Claude Code runs its Bash tool in its own sandbox (bubblewrap), with no way back to
# running a command outside it. Written as root into this container's managed settings, which the
# agent cannot change (without sudo) and which stay out of the agent's state volume, shared with
# sandboxes made without the flag. The weaker nested mode binds the container's /proc instead of
# mounting a fresh one, which the engine's masked /proc paths forbid in a container.
set -e
merge-json /etc/claude-code/managed-settings.json \
  '.sandbox.enabled = true | .sandbox.failIfUnavailable = true | .sandbox.allowUnsandboxedCommands = false
   | .sandbox.enableWeakerNestedSandbox = true'
chmod 0644 /etc/claude-code/managed-settings.json
