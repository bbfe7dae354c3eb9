import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { notFoundError, usageError } from '../cli/errors.js';
import { listContainers } from '../engine/containers.js';
import { LABEL } from './identity.js';

/** A sandbox as `sbx ls --json` reports it: a stable schema. */
export interface SandboxSummary {
  id: string;
  name: string;
  agent: string;
  status: string;
  running: boolean;
  workspace: string;
  template: string;
  image: string;
  created: string;
  ports: Array<{ hostIp?: string; hostPort?: number; containerPort: number; protocol: string }>;
}

/** Every sbx sandbox on the engine, found by label; foreign containers are never listed. */
export async function listSandboxes(): Promise<SandboxSummary[]> {
  const containers = await listContainers([`${LABEL.managed}=true`]);
  return containers
    .map((c) => {
      const labels = c.Labels ?? {};
      return {
        id: c.Id,
        name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
        agent: labels[LABEL.agent] ?? '?',
        status: c.Status,
        running: c.State === 'running',
        workspace: labels[LABEL.workspace] ?? '?',
        template: labels[LABEL.template] ?? '?',
        image: c.Image,
        created: new Date(c.Created * 1000).toISOString(),
        ports: (c.Ports ?? []).map((p) => ({
          ...(p.IP ? { hostIp: p.IP } : {}),
          ...(p.PublicPort ? { hostPort: p.PublicPort } : {}),
          containerPort: p.PrivatePort,
          protocol: p.Type,
        })),
      };
    })
    .sort(
      (a, b) =>
        Number(b.running) - Number(a.running) ||
        a.workspace.localeCompare(b.workspace) ||
        a.name.localeCompare(b.name),
    );
}

/**
 * Finds the sandbox a user named: by name, by unique id prefix, or by workspace path ('.' is here).
 * An ambiguous prefix is an error listing the matches.
 */
export function findSandbox(all: SandboxSummary[], ref: string, cwd = process.cwd()): SandboxSummary {
  const byName = all.find((s) => s.name === ref);
  if (byName) return byName;
  if (ref === '.' || ref.includes('/')) {
    let path = resolve(cwd, ref);
    try {
      path = realpathSync(path);
    } catch {}
    const byPath = all.filter((s) => s.workspace === path);
    if (byPath.length === 1) return byPath[0]!;
    if (byPath.length > 1) {
      throw usageError(
        `${path} has several sandboxes: ${byPath.map((s) => s.name).join(', ')}.`,
        'Name one of them.',
      );
    }
  }
  const byId = /^[0-9a-f]+$/.test(ref) ? all.filter((s) => s.id.startsWith(ref)) : [];
  if (byId.length === 1) return byId[0]!;
  if (byId.length > 1) {
    throw usageError(
      `The id prefix ${ref} matches ${byId.length} sandboxes: ${byId.map((s) => `${s.name} (${s.id.slice(0, 12)})`).join(', ')}.`,
      'Give more of the id, or the name.',
    );
  }
  throw notFoundError(
    `No sandbox named ${ref}, with that id prefix, or for that workspace.`,
    'See them with `sbx ls`.',
  );
}
