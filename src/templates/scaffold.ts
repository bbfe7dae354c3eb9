import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { AgentSpec } from '../agents/registry.js';
import { SbxError, usageError } from '../shared/errors.js';
import { builtinNames } from './template.js';

/**
 * Creates a custom template folder (in the user's templates folder for a bare name, else at the path)
 * whose Dockerfile starts FROM the agent's template. Refuses to touch a folder that exists.
 */
export function scaffoldTemplate(
  spec: string,
  agent: AgentSpec,
  configDir: string,
): { name: string; dir: string } {
  const isPath = spec.includes('/') || spec.startsWith('.') || spec.startsWith('~');
  const dir = isPath ? resolve(spec) : join(configDir, 'templates', spec);
  const name = basename(dir);
  if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/.test(name))
    throw usageError(
      `Invalid template name "${name}".`,
      'Use letters, digits, ., _ and -, starting with a letter or digit.',
    );
  if (builtinNames().includes(name))
    throw usageError(`"${name}" is a built-in template's name.`, `Choose another name, e.g. my-${name}.`);
  if (existsSync(dir))
    throw new SbxError('conflict', `${dir} already exists; sbx does not overwrite it.`, {
      hint: 'Choose another name, or edit that folder.',
    });
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'Dockerfile'),
    `# Custom sbx template "${name}" for ${agent.description}.
# sbx builds it on first use and whenever a file in this folder changes (the image is tagged with
# a hash of the folder's contents, so unchanged templates are never rebuilt).
#   Build now:    sbx template build ${isPath ? dir : name}
#   Use it:       sbx run ${agent.name} --template ${isPath ? dir : name}
#   By default:   sbx config set templates.${agent.name} ${isPath ? dir : name}
FROM sbx/${agent.template}

# Steps run as root. The agent runs as the user "agent", which gets your UID/GID when the sandbox
# starts; its home is /home/agent. Keep the parent's ENTRYPOINT and CMD: sbx relies on them.

# System packages:
# RUN apt-get update \\
#  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-client \\
#  && rm -rf /var/lib/apt/lists/*

# Tools from npm or pip:
# RUN npm install -g pnpm && npm cache clean --force

# Files from this folder (list what to leave out in .dockerignore):
# COPY my-settings.json /etc/my-tool/settings.json

# Variables every process in the sandbox sees (never put secrets here: they end up in the image;
# pass them with sbx run -e instead):
# ENV GOFLAGS=-mod=mod
`,
  );
  writeFileSync(join(dir, '.dockerignore'), '# Files in this folder that the build must not see.\n.git\n');
  return { name, dir };
}
