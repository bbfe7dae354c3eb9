#!/bin/sh
# Marks the workspace as a trusted folder: Gemini CLI ignores --yolo in folders it does not trust
# ("Approval mode overridden to default because the current folder is not trusted").
set -e
merge-json "$HOME/.gemini/trustedFolders.json" '.[$ws] = "TRUST_FOLDER"' --arg ws "$PWD"
