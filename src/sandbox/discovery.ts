import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { type ContainerInfo, inspectContainer, listContainers } from '../engine/containers.js';
import type { PolicyView } from '../network/policy.js';
import { notFoundError, usageError } from '../shared/errors.js';
import { currentUser, LABEL, ownedBy, type SandboxRecord } from '../shared/labels.js';
import { type PortMapping, portKey } from '../shared/parse.js';

/** A sandbox as one list call shows it: enough to name, filter and sort it. */
export interface SandboxRef extends SandboxRecord {
  agent: string;
  /** running, paused, or stopped (every other engine state). */
  state: 'running' | 'paused' | 'stopped';
  /** The engine's words, e.g. "Up 5 minutes", "Exited (0) 2 hours ago". */
  status: string;
  /** The workspace's default sandbox (not made with --name). */
  default: boolean;
  template: string;
  image: string;
  created: string;
  /** Its own network (behind the egress proxy), "none", or null for a sandbox from before policies. */
  network: string | null;
  /** A branch sandbox's branch (its workspace is a worktree), else null. */
  branch: string | null;
  /** The secrets bound to it (names; their variables hold placeholders, the proxy injects the values). */
  secrets: string[];
  /** A synced sandbox's workspace volume (its engine cannot see the host's files), else null. */
  syncVolume: string | null;
  /** A --docker sandbox's inner-engine volume (its images, containers and volumes), else null. */
  dockerVolume: string | null;
}

export interface PortSummary {
  hostIp: string;
  /** The port asked for; 0 when the engine was asked to pick one. */
  hostPort: number;
  /** The port in use while the sandbox runs (the one picked for 0), else absent. */
  boundPort?: number;
  containerPort: number;
  protocol: string;
}

/** A sandbox as `sbx ls --json` reports it; this is the documented, stable schema. */
export interface SandboxSummary extends SandboxRef {
  /** When it was last used (ISO 8601): now while it runs, else when it stopped (see lastUsedOf). */
  lastUsed: string;
  /** The OCI runtime it runs under, as the engine names it (runc, runsc for gVisor...). */
  runtime: string;
  /** Made with --inner-sandbox: the agent's own sandbox works inside (see docs/inner-sandbox.md). */
  innerSandbox: boolean;
  ports: PortSummary[];
  limits: { cpus: number; memory: number; pidsLimit: number };
  /** It has a Docker engine of its own (--docker). */
  docker: boolean;
  /** The disk its inner engine uses (bytes, its volume), when the engine reports it; null without one. */
  dockerDiskBytes: number | null;
}

const stateOf = (engineState: string): SandboxRef['state'] =>
  engineState === 'running' || engineState === 'paused' ? engineState : 'stopped';

const ORDER = { running: 0, paused: 1, stopped: 2 } as const;

/**
 * The user's sbx sandboxes on the engine (every user's with allUsers, as far as the engine shows
 * them), found by label in one call: running first, then by workspace. Foreign containers are never
 * listed; labels sbx does not know are ignored.
 */
export async function listSandboxes(options: { allUsers?: boolean } = {}): Promise<SandboxRef[]> {
  const containers = await listContainers([`${LABEL.managed}=true`]);
  return containers
    .filter((c) => options.allUsers || ownedBy(c.Labels))
    .map((c) => {
      const labels = c.Labels ?? {};
      return {
        id: c.Id,
        name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
        agent: labels[LABEL.agent] ?? '?',
        state: stateOf(c.State),
        status: c.Status,
        workspace: labels[LABEL.workspace] ?? '?',
        default: labels[LABEL.named] !== 'true',
        template: labels[LABEL.template] ?? '?',
        image: c.Image,
        created: new Date(c.Created * 1000).toISOString(),
        uid: Number(labels[LABEL.uid] ?? 1000),
        gid: Number(labels[LABEL.gid] ?? 1000),
        network: labels[LABEL.network] ?? null,
        branch: labels[LABEL.branch] ?? null,
        secrets: labels[LABEL.secrets]?.split(',').filter(Boolean) ?? [],
        syncVolume: labels[LABEL.sync] ?? null,
        dockerVolume: labels[LABEL.docker] ?? null,
      };
    })
    .sort(
      (a, b) =>
        ORDER[a.state] - ORDER[b.state] ||
        a.workspace.localeCompare(b.workspace) ||
        Number(b.default) - Number(a.default) ||
        a.name.localeCompare(b.name),
    );
}

/** The full summary of each sandbox (inspected in parallel); one removed meanwhile is left out. */
export async function describeSandboxes(refs: SandboxRef[]): Promise<SandboxSummary[]> {
  // The proxy's code only when a sandbox publishes ports: `sbx ls` and a reattach start without it.
  const proxy = () => import('../network/proxy.js');
  const infos = await Promise.all(
    refs.map(async (r) => {
      const info = await inspectContainer(r.id);
      const forwarder =
        info?.Config.Labels?.[LABEL.ports] && r.network
          ? await (await proxy()).inspectForwarder(r.network)
          : undefined;
      return info ? summarize(r, info, forwarder) : undefined;
    }),
  );
  return withDockerDisk(infos.filter((s): s is SandboxSummary => s !== undefined));
}

/** The inner engines' disk use, in one call to the engine, when any sandbox has one. */
async function withDockerDisk(summaries: SandboxSummary[]): Promise<SandboxSummary[]> {
  if (!summaries.some((s) => s.dockerVolume)) return summaries;
  const { volumeSizes } = await import('../engine/volumes.js');
  const sizes = await volumeSizes().catch(() => new Map<string, number>());
  return summaries.map((s) => {
    const size = s.dockerVolume ? sizes.get(s.dockerVolume) : undefined;
    return { ...s, dockerDiskBytes: size !== undefined && size >= 0 ? size : null };
  });
}

/**
 * A sandbox's summary from its inspection. Its ports are published by its forwarder (whose
 * bindings say which host port is in use); a sandbox from before policies published its own.
 */
export function summarize(ref: SandboxRef, info: ContainerInfo, forwarder?: ContainerInfo): SandboxSummary {
  const publisher = forwarder ?? info;
  const bound = publisher.State.Running ? (publisher.NetworkSettings?.Ports ?? {}) : {};
  // The ports asked for come from the label: Podman stores the port it picked for 0 in the bindings.
  const asked = JSON.parse(info.Config.Labels?.[LABEL.ports] ?? '[]') as PortMapping[];
  const ports = Object.entries(publisher.HostConfig.PortBindings ?? {}).flatMap(([key, bindings]) => {
    const [port, protocol = 'tcp'] = key.split('/');
    return ((bindings ?? []) as Array<{ HostIp?: string; HostPort?: string }>).map((b, i) => {
      const live = (bound[key] as Array<{ HostPort?: string }> | null | undefined)?.[i]?.HostPort;
      return {
        hostIp: b.HostIp || '0.0.0.0',
        hostPort: asked.filter((p) => portKey(p) === key)[i]?.hostPort ?? Number(b.HostPort || 0),
        ...(info.State.Running && live ? { boundPort: Number(live) } : {}),
        containerPort: Number(port),
        protocol,
      };
    });
  });
  return {
    ...ref,
    state: info.State.Running ? (info.State.Paused ? 'paused' : 'running') : 'stopped',
    lastUsed: lastUsedOf(info),
    runtime: runtimeOf(info),
    innerSandbox: info.Config.Labels?.[LABEL.innerSandbox] === 'true',
    ports,
    limits: {
      cpus: (info.HostConfig.NanoCpus ?? 0) / 1e9,
      memory: info.HostConfig.Memory ?? 0,
      pidsLimit: Math.max(0, info.HostConfig.PidsLimit ?? 0),
    },
    docker: ref.dockerVolume !== null,
    dockerDiskBytes: null,
  };
}

/**
 * The runtime a sandbox runs under: the one it was created with (its label; Podman reports every
 * runtime as "oci"), else the engine's record, else runc (the engine's default).
 */
export function runtimeOf(info: ContainerInfo): string {
  const asked = info.Config.Labels?.[LABEL.runtime];
  const engine = info.HostConfig.Runtime;
  return asked || (engine && engine !== 'oci' ? engine : 'runc');
}

/**
 * When a sandbox was last used, from the engine's own record (sbx keeps no state of its own): now
 * while it runs; else when it stopped, less its idle time when it stopped itself for being idle
 * (its watcher exits 0, see idle.ts; `sbx stop` ends it with a signal); never started: created.
 */
export function lastUsedOf(info: ContainerInfo, now = Date.now()): string {
  if (info.State.Running) return new Date(now).toISOString();
  const finished = Date.parse(info.State.FinishedAt);
  if (!(finished > 0)) return new Date(Date.parse(info.Created)).toISOString();
  const idle = Number(info.Config.Labels?.[LABEL.idleStop] ?? 0);
  const idled = info.State.ExitCode === 0 && idle > 0 ? idle * 1000 : 0;
  return new Date(finished - idled).toISOString();
}

/** When each sandbox was last used, by id: one inspection per stopped sandbox (running ones: now). */
export async function lastUsedOfAll(refs: SandboxRef[]): Promise<Map<string, string>> {
  const now = new Date().toISOString();
  const entries = await Promise.all(
    refs.map(async (r): Promise<[string, string]> => {
      if (r.state !== 'stopped') return [r.id, now];
      const info = await inspectContainer(r.id);
      return [r.id, info ? lastUsedOf(info) : r.created];
    }),
  );
  return new Map(entries);
}

/**
 * Finds the sandbox a user named: by name, by unique id prefix, or by workspace path ('.' is here;
 * a path with several sandboxes means its default one). An ambiguous prefix is an error listing
 * the matches.
 */
export function findSandbox<T extends SandboxRef>(all: T[], ref: string, cwd = process.cwd()): T {
  const byName = all.find((s) => s.name === ref);
  if (byName) return byName;
  if (ref === '.' || ref === '..' || ref.includes('/') || ref.startsWith('~')) {
    let path = resolve(cwd, ref);
    try {
      path = realpathSync(path);
    } catch {}
    const byPath = all.filter((s) => s.workspace === path);
    const chosen = byPath.length === 1 ? byPath[0] : byPath.find((s) => s.default);
    if (chosen) return chosen;
    if (byPath.length > 1) {
      throw usageError(
        `${path} has several sandboxes and none is its default: ${byPath.map((s) => s.name).join(', ')}.`,
        'Name one of them.',
      );
    }
    throw notFoundError(
      `${path} has no sandbox.`,
      'Create one with `sbx run AGENT` or `sbx create AGENT` there.',
    );
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

/**
 * The sandboxes a user's command may name: their own; root (the engine's administrator) may name
 * every user's.
 */
export const nameableSandboxes = () => listSandboxes({ allUsers: currentUser() === '0' });

/** The one sandbox a command acts on: named, or the current folder's. */
export async function resolveSandbox(ref: string | undefined): Promise<SandboxRef> {
  return findSandbox(await nameableSandboxes(), ref ?? '.');
}

/** Everything `sbx inspect` shows. Variables are listed by name only: values may be secrets. */
export interface SandboxDetails extends SandboxSummary {
  templateHash: string | null;
  sbxVersion: string | null;
  startedAt: string | null;
  user: { name: string; uid: number; gid: number };
  git: { name: string | null; email: string | null };
  mounts: Array<{ type: string; source: string; destination: string; readOnly: boolean }>;
  envNames: string[];
  /** The effective egress policy (as the proxy applies it now), or null without a network. */
  policy: PolicyView | null;
  /** Secrets the proxy injects for it (never a value), and the hosts whose TLS the proxy terminates for that. */
  injection: {
    secrets: Array<{ name: string; hosts: string[]; header: string }>;
    terminatedHosts: string[];
  } | null;
  /** A branch sandbox's worktree: the repository it belongs to and the ref the branch was made from. */
  worktree: { path: string; branch: string; repository: string; from: string | null } | null;
  dockerSocket: boolean;
  sudo: boolean;
  capabilitiesDropped: string[];
}

export async function sandboxDetails(ref: SandboxRef): Promise<SandboxDetails> {
  const info = await inspectContainer(ref.id);
  if (!info) throw notFoundError(`The sandbox ${ref.name} was removed meanwhile.`, 'See `sbx ls`.');
  const [{ inspectImage }, { inspectForwarder, readPolicy }, { viewOf }] = await Promise.all([
    import('../engine/images.js'),
    import('../network/proxy.js'),
    import('../network/policy.js'),
  ]);
  const [image, forwarder, policy] = await Promise.all([
    inspectImage(info.Image),
    ref.network && ref.network !== 'none' ? inspectForwarder(ref.network) : undefined,
    ref.network && ref.network !== 'none' ? readPolicy(ref.network).catch(() => undefined) : undefined,
  ]);
  const env = new Map(
    (info.Config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] as const),
  );
  const labels = info.Config.Labels ?? {};
  const [summary] = await withDockerDisk([summarize(ref, info, forwarder)]);
  return {
    ...summary!,
    templateHash: image?.Config?.Labels?.[LABEL.templateHash] ?? null,
    sbxVersion: labels[LABEL.version] ?? null,
    startedAt: info.State.Running ? info.State.StartedAt : null,
    user: { name: ref.uid === 0 ? 'root' : 'agent', uid: ref.uid, gid: ref.gid },
    git: { name: env.get('SBX_GIT_NAME') ?? null, email: env.get('SBX_GIT_EMAIL') ?? null },
    mounts: (info.Mounts ?? []).map((m) => ({
      type: m.Type,
      source: m.Type === 'volume' ? (m.Name ?? m.Source) : m.Source,
      destination: m.Destination,
      readOnly: !m.RW,
    })),
    envNames: [...env.keys()].sort(),
    policy: policy ? viewOf(policy) : null,
    injection: policy
      ? {
          secrets: (policy.secrets ?? []).map((s) => ({ name: s.name, hosts: s.hosts, header: s.header })),
          terminatedHosts: [...new Set((policy.secrets ?? []).flatMap((s) => s.hosts))],
        }
      : null,
    worktree: ref.branch
      ? {
          path: ref.workspace,
          branch: ref.branch,
          repository: labels[LABEL.repository] ?? '?',
          from: labels[LABEL.from] ?? null,
        }
      : null,
    dockerSocket: labels[LABEL.dockerSocket] === 'true',
    sudo: labels[LABEL.noSudo] !== 'true',
    capabilitiesDropped: info.HostConfig.CapDrop ?? [],
  };
}
