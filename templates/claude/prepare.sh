#!/bin/sh
# Pre-answers Claude Code's first-run questions that the sandbox makes moot: onboarding, trusting
# the workspace folder, and the bypass-permissions warning. Logins and other settings are kept.
set -e
dir="${CLAUDE_CONFIG_DIR:-$HOME}"
settings="${CLAUDE_CONFIG_DIR:-$HOME/.claude}/settings.json"
merge-json "$dir/.claude.json" \
  '.hasCompletedOnboarding = true | .bypassPermissionsModeAccepted = true | .theme //= "dark"
   | .projects[$ws].hasTrustDialogAccepted = true' --arg ws "$PWD"
merge-json "$settings" '.skipDangerousModePermissionPrompt = true'
