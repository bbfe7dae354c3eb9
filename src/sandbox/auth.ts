import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { AGENTS, type AgentSpec } from '../agents/registry.js';
import { createContainer, listContainers, removeContainer, runHelper } from '../engine/containers.js';
import { isInUse } from '../engine/errors.js';
import { inspectImage } from '../engine/images.js';
import { ensureVolume, listVolumes, putArchive, removeVolume, volumeSizes } from '../engine/volumes.js';
import { notFoundError, SbxError } from '../shared/errors.js';
import { currentUser, extraLabels, LABEL } from '../shared/labels.js';
import { HELPER_IMAGE, hostHome, legacyStateVolume, loginVolume } from './credentials.js';

export interface AgentStateSummary {
  agent: string;
  volume: string;
  /** Bytes, as the engine counts them; null when it does not say. */
  size: number | null;
  /** The newest change inside (ISO 8601); null when unknown. */
  lastUsed: string | null;
  /** null when the agent's login cannot be told from its files. */
  loggedIn: boolean | null;
  /** Sandboxes that mount it (running or not). */
  sandboxes: string[];
  /** The old state volume shared by every user and project (no longer mounted; `auth rm AGENT --legacy`). */
  legacy: boolean;
}

/**
 * The user's saved logins: one login volume per agent, and the old shared state volumes that are
 * still there. Login and last change are read by one helper container that mounts them read-only
 * (works on remote engines too).
 */
export async function listAgentState(): Promise<AgentStateSummary[]> {
  const volumes = (await listVolumes([LABEL.state])).filter(
    (v) =>
      v.name === loginVolume(v.labels[LABEL.state]!) || v.name === legacyStateVolume(v.labels[LABEL.state]!),
  );
  if (volumes.length === 0) return [];
  const [sizes, containers, helper] = await Promise.all([
    volumeSizes(),
    listContainers([`${LABEL.managed}=true`]),
    inspectImage(HELPER_IMAGE),
  ]);
  const agents = volumes.map((v) => AGENTS.find((a) => a.name === v.labels[LABEL.state]));
  const legacyAt = (i: number) => volumes[i]!.name === legacyStateVolume(volumes[i]!.labels[LABEL.state]!);
  const facts = new Map<string, { lastUsed: string | null; present: string[] }>();
  if (helper) {
    const script = volumes
      .map((_, i) => {
        const login = agents[i]?.state?.login ?? [];
        const dir = agents[i]?.state?.dir ?? '.';
        // A login volume keeps its files at their paths in the home; the old one was the agent's folder.
        const at = (f: string) => (legacyAt(i) ? f.slice(dir.length + 1) : f);
        return `cd /state/${i} && echo "${i} $(find . -printf '%T@\\n' 2>/dev/null | sort -n | tail -1) ${login
          .map((f) => `$([ -e '${at(f)}' ] && echo '${f}')`)
          .join(' ')}"`;
      })
      .join('; ');
    const { output } = await runHelper({
      Image: HELPER_IMAGE,
      Entrypoint: ['sh', '-c'],
      Cmd: [script],
      Labels: extraLabels(),
      HostConfig: {
        Mounts: volumes.map((v, i) => ({
          Type: 'volume',
          Source: v.name,
          Target: `/state/${i}`,
          ReadOnly: true,
        })),
        NetworkMode: 'none',
      },
    });
    for (const line of output.split('\n')) {
      const [index, time, ...present] = line.trim().split(/\s+/);
      const volume = volumes[Number(index)];
      if (!volume || !/^\d/.test(index ?? '')) continue;
      facts.set(volume.name, {
        lastUsed: time && /^\d/.test(time) ? new Date(Number(time) * 1000).toISOString() : null,
        present,
      });
    }
  }
  return volumes.map((v, i) => {
    const agent = agents[i];
    const known = facts.get(v.name);
    const size = sizes.get(v.name);
    return {
      agent: v.labels[LABEL.state]!,
      volume: v.name,
      size: size === undefined || size < 0 ? null : size,
      lastUsed: known?.lastUsed ?? null,
      loggedIn: known && agent?.state?.login ? known.present.length > 0 : null,
      sandboxes: containers
        .filter((c) => c.Mounts?.some((m) => m.Name === v.name))
        .map((c) => (c.Names[0] ?? c.Id).replace(/^\//, '')),
      legacy: legacyAt(i),
    };
  });
}

/**
 * Removes the user's login volume of an agent (or, with legacy, the old state volume every user's
 * sandboxes shared). Refused while a sandbox (even a stopped one) mounts it.
 */
export async function removeAgentState(
  agent: AgentSpec,
  options: { legacy?: boolean } = {},
): Promise<string> {
  const name = options.legacy ? legacyStateVolume(agent.name) : loginVolume(agent.name);
  const users = (await listContainers([])).filter((c) => c.Mounts?.some((m) => m.Name === name));
  if (users.length > 0) {
    throw new SbxError(
      'conflict',
      `The ${agent.name} state (${name}) is used by ${users.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, '')).join(', ')}; nothing was removed.`,
      { hint: 'Remove those sandboxes first (sbx rm -f NAME; workspace files stay), then run this again.' },
    );
  }
  if ((await listVolumes([`${LABEL.state}=${agent.name}`])).every((v) => v.name !== name))
    throw notFoundError(`${agent.name} has no saved state (no volume ${name}).`, 'See `sbx auth ls`.');
  try {
    await removeVolume(name);
    return name;
  } catch (err) {
    if (!isInUse(err)) throw err;
    throw new SbxError('conflict', `The ${agent.name} state (${name}) is in use by a container.`, {
      hint: 'Remove the containers that mount it first.',
    });
  }
}

/**
 * Copies the host's login for an agent (its `import` list) into the user's login volume of the
 * agent, so every sandbox of theirs of that agent starts logged in. Files are copied into a helper container that is never
 * started; the next sandbox start gives them to its user.
 */
export async function importLogin(agent: AgentSpec, fromHome = hostHome()): Promise<string[]> {
  const state = agent.state;
  if (!state)
    throw notFoundError(`${agent.name} keeps no login.`, 'Choose an agent such as claude or codex.');
  const present = state.import.filter(([host]) => existsSync(join(fromHome, host)));
  if (present.length === 0) {
    throw notFoundError(
      `No ${agent.name} login found on this host (looked for ${state.import.map(([h]) => `~/${h}`).join(', ')}).`,
      'Log in once inside any sandbox of that agent instead (the login is kept in your login volume); on macOS some agents keep their login in the Keychain, which sbx cannot read.',
    );
  }
  if (!(await inspectImage(HELPER_IMAGE)))
    throw notFoundError(
      'The base template is not built yet.',
      'Run `sbx template build` once, then import again.',
    );
  const name = loginVolume(agent.name);
  const user = currentUser();
  await ensureVolume(name, {
    ...extraLabels(),
    [LABEL.state]: agent.name,
    ...(user ? { [LABEL.user]: user } : {}),
  });
  const id = await createContainer({
    Image: HELPER_IMAGE,
    Labels: extraLabels(),
    HostConfig: {
      Mounts: [{ Type: 'volume', Source: name, Target: '/import' }],
      NetworkMode: 'none',
    },
  });
  if (!id) throw new SbxError('internal', 'The helper container could not be created.');
  try {
    const { default: tar } = await import('tar-fs');
    const renames = new Map(present.map(([host, inside]) => [host, inside]));
    const uid = process.getuid?.() ?? 1000;
    const gid = process.getgid?.() ?? 1000;
    const archive = tar.pack(fromHome, {
      entries: present.map(([host]) => host),
      map: (header) => {
        const top = [...renames.keys()].find((h) => header.name === h || header.name.startsWith(`${h}/`));
        const renamed = top ? renames.get(top)! + header.name.slice(top.length) : header.name;
        return { ...header, name: renamed, uid, gid };
      },
    });
    await putArchive(id, '/import', archive as unknown as Readable);
  } finally {
    await removeContainer(id, true);
  }
  return present.map(([host]) => `~/${host}${statSync(join(fromHome, host)).isDirectory() ? '/' : ''}`);
}
