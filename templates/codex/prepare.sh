#!/bin/sh
# Trusts the workspace so Codex does not ask whether to trust the folder on first start.
set -e
config="${CODEX_HOME:-$HOME/.codex}/config.toml"
mkdir -p "$(dirname "$config")"
touch "$config"
if ! grep -qF "[projects.\"$PWD\"]" "$config"; then
  printf '\n[projects."%s"]\ntrust_level = "trusted"\n' "$PWD" >> "$config"
fi
