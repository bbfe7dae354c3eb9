import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readConfig } from '../config/config.js';
import { extraCaCerts } from '../config/tls-proxy.js';
import { inspectContainer } from '../engine/containers.js';
import { imageLayers, removeImage } from '../engine/images.js';
import { type DiskUsage, diskUsage } from '../engine/system.js';
import { detachSandbox, orphanNetworks, PROXY_NAME } from '../network/proxy.js';
import { SbxError } from '../shared/errors.js';
import { extraLabels, inScope, LABEL, ownedBy } from '../shared/labels.js';
import { planTemplate } from '../templates/build.js';
import { BUILTIN_DIR, builtinNames } from '../templates/template.js';
import { lastUsedOf, listSandboxes, type SandboxRef } from './discovery.js';
import { removeSandbox } from './lifecycle.js';

/**
 * current: built from its template's files as they are now; superseded: from older files (the next
 * use builds the current one); unknown: its template folder is gone; saved: made by `sbx save`;
 * dangling: an sbx build that lost its tags; other: not sbx's (a sandbox made from an image reference).
 */
export type ImageStatus = 'current' | 'superseded' | 'unknown' | 'saved' | 'dangling' | 'other';

export interface DiskImage {
  id: string;
  tags: string[];
  /** The template (or saved name) it belongs to, when sbx built it. */
  template: string | null;
  status: ImageStatus;
  /** Bytes of all its layers, and of those it shares with other images (the engine's figures). */
  size: number;
  sharedSize: number;
  /** The sandboxes using it. */
  sandboxes: string[];
}

export interface DiskSandbox {
  name: string;
  agent: string;
  state: SandboxRef['state'];
  workspace: string;
  image: string;
  /** Bytes of its writable layer: what it changed outside its workspace and volumes. */
  writable: number;
  /** Its named volumes (a synced workspace copy, agent state shared with other sandboxes). */
  volumes: Array<{ name: string; size: number }>;
  lastUsed: string;
}

export interface DiskVolume {
  name: string;
  kind: 'agent-state' | 'workspace-copy' | 'proxy-state' | 'docker-engine';
  size: number;
  /** Containers mounting it now. */
  inUse: number;
}

/** What `sbx df --json` prints. Sizes are bytes from the engine's /system/df; -1 where it has none. */
export interface DiskReport {
  /** With SBX_LABELS set: the labels everything shown carries (nothing else is shown). */
  scope: Record<string, string>;
  sandboxes: DiskSandbox[];
  images: DiskImage[];
  volumes: DiskVolume[];
  proxy: { name: string; state: string; writable: number } | null;
  totals: {
    /** The images' layers, each counted once however many images and sandboxes share it. */
    images: number;
    /** What the images share: the sum of their sizes less the above. */
    imagesShared: number;
    sandboxes: number;
    volumes: number;
    proxy: number;
    /** images + sandboxes + volumes + proxy. */
    total: number;
  };
}

const repoOf = (tag: string) => tag.slice(0, tag.lastIndexOf(':'));

/** Whether an image is one of sbx's (built from a template, or saved) and what it is now. */
async function classifier(): Promise<(img: DiskUsage['images'][number]) => Omit<DiskImage, 'sandboxes'>> {
  const caCerts = extraCaCerts((await readConfig()).caCerts);
  const builtins = new Set(builtinNames());
  const hashes = new Map<string, string | undefined>();
  const currentHash = (name: string, dir: string, builtin: boolean) => {
    const key = `${builtin}\0${dir}`;
    if (!hashes.has(key)) {
      try {
        hashes.set(key, planTemplate({ kind: 'folder', name, dir, builtin }, caCerts).hash);
      } catch {
        hashes.set(key, undefined);
      }
    }
    return hashes.get(key);
  };
  return (img) => {
    const base = { id: img.id, tags: img.repoTags, size: img.size, sharedSize: img.sharedSize };
    const labels = img.labels;
    if (labels[LABEL.saved]) return { ...base, template: labels[LABEL.saved]!, status: 'saved' };
    const hash = labels[LABEL.templateHash];
    if (!hash) return { ...base, template: null, status: 'other' };
    const source = labels[LABEL.templateSource] ?? '';
    const repo = img.repoTags.map(repoOf).find((r) => r.startsWith('sbx/'));
    const builtin = repo ? /^sbx\/(.+)$/.exec(repo)![1]! : undefined;
    const name = builtin && builtins.has(builtin) ? builtin : basename(source);
    if (img.repoTags.length === 0) return { ...base, template: name || null, status: 'dangling' };
    const current =
      builtin && builtins.has(builtin)
        ? currentHash(builtin, join(BUILTIN_DIR, builtin), true)
        : source && existsSync(join(source, 'Dockerfile'))
          ? currentHash(name, source, false)
          : undefined;
    if (!current) return { ...base, template: name, status: 'unknown' };
    return { ...base, template: name, status: current === hash ? 'current' : 'superseded' };
  };
}

/** The bytes of a set of images' layers, each layer counted once. */
async function uniqueBytes(ids: Iterable<string>, layers: Map<string, Array<{ key: string; size: number }>>) {
  const seen = new Map<string, number>();
  for (const id of ids) {
    if (!layers.has(id)) layers.set(id, await imageLayers(id));
    for (const layer of layers.get(id)!) seen.set(layer.key, layer.size);
  }
  return { bytes: [...seen.values()].reduce((a, b) => a + b, 0), keys: new Set(seen.keys()) };
}

/** What sbx holds on the engine (see DiskReport), from one /system/df and the images' histories. */
export async function diskReport(options: { allUsers?: boolean } = {}): Promise<DiskReport> {
  return (await survey(options)).report;
}

/** The user's own sandboxes and login volumes (everyone's with allUsers); images are everyone's. */
async function survey(options: { allUsers?: boolean } = {}): Promise<{ report: DiskReport; df: DiskUsage }> {
  const mine = (labels: Record<string, string>) => options.allUsers || ownedBy(labels);
  const [df, classify] = await Promise.all([diskUsage(), classifier()]);
  const volumeSize = new Map(df.volumes.map((v) => [v.name, v.size]));
  const sandboxContainers = df.containers.filter(
    (c) => c.labels[LABEL.managed] === 'true' && inScope(c.labels) && mine(c.labels),
  );
  const infos = await Promise.all(sandboxContainers.map((c) => inspectContainer(c.id)));
  const sandboxes: DiskSandbox[] = sandboxContainers.flatMap((c, i) => {
    const info = infos[i];
    if (!info) return [];
    return [
      {
        name: c.name,
        agent: c.labels[LABEL.agent] ?? '?',
        state: info.State.Running ? (info.State.Paused ? 'paused' : 'running') : 'stopped',
        workspace: c.labels[LABEL.workspace] ?? '?',
        image: info.Config.Image,
        writable: c.sizeRw,
        volumes: c.volumes.map((name) => ({ name, size: volumeSize.get(name) ?? -1 })),
        lastUsed: lastUsedOf(info),
      },
    ];
  });
  const usedBy = new Map<string, string[]>();
  for (const c of sandboxContainers) usedBy.set(c.imageId, [...(usedBy.get(c.imageId) ?? []), c.name]);
  const images = df.images
    .filter(
      (img) =>
        usedBy.has(img.id) ||
        ((img.labels[LABEL.templateHash] || img.labels[LABEL.saved]) && inScope(img.labels)),
    )
    .map((img) => ({ ...classify(img), sandboxes: usedBy.get(img.id) ?? [] }))
    .sort((a, b) => (a.tags[0] ?? '~').localeCompare(b.tags[0] ?? '~'));
  const volumes: DiskVolume[] = df.volumes
    // A login volume is its user's; the old shared state volumes (no user label) are everyone's.
    .filter((v) => inScope(v.labels) && (!v.labels[LABEL.user] || mine(v.labels)))
    .flatMap((v) => {
      const kind: DiskVolume['kind'] | undefined = v.labels[LABEL.state]
        ? 'agent-state'
        : v.labels[LABEL.proxy]
          ? 'proxy-state'
          : v.labels[LABEL.docker]
            ? 'docker-engine'
            : v.labels[LABEL.workspace]
              ? 'workspace-copy'
              : undefined;
      return kind ? [{ name: v.name, kind, size: v.size, inUse: v.refCount }] : [];
    });
  const proxyContainer = df.containers.find((c) => c.name === PROXY_NAME && inScope(c.labels));
  const proxy = proxyContainer
    ? { name: proxyContainer.name, state: proxyContainer.state, writable: proxyContainer.sizeRw }
    : null;
  const once = (
    await uniqueBytes(
      images.map((i) => i.id),
      new Map(),
    )
  ).bytes;
  const totals = {
    images: once,
    imagesShared: images.reduce((a, i) => a + i.size, 0) - once,
    sandboxes: sandboxes.reduce((a, s) => a + Math.max(0, s.writable), 0),
    volumes: volumes.reduce((a, v) => a + Math.max(0, v.size), 0),
    proxy: proxy?.writable ?? 0,
    total: 0,
  };
  totals.total = totals.images + totals.sandboxes + totals.volumes + totals.proxy;
  return { report: { scope: extraLabels(), sandboxes, images, volumes, proxy, totals }, df };
}

export interface PruneRequest {
  /** --sandboxes: remove stopped sandboxes last used longer ago than this many seconds (0: any). */
  sandboxesUnusedFor?: number | undefined;
  /** --images: also template images no sandbox uses that are current or whose folder is gone. */
  images: boolean;
  /** --all-users: every user's stopped sandboxes, not only the user's own. */
  allUsers?: boolean;
}

export interface PrunePlan {
  sandboxes: Array<{ name: string; workspace: string; lastUsed: string; writable: number }>;
  images: Array<{ id: string; tags: string[]; template: string | null; status: ImageStatus }>;
  networks: Array<{ name: string; sandbox: string; forwarder: string | null }>;
  /** Bytes the removals free: the sandboxes' writable layers and the image layers nothing else uses. */
  freed: number;
}

export interface PruneResult extends PrunePlan {
  dryRun: boolean;
  /** Whether the removals were made (false for --dry-run, a "no" at the prompt, or nothing to do). */
  removed: boolean;
  failed: Array<{ what: string; error: string }>;
}

const PRUNABLE: Record<ImageStatus, 'always' | 'images' | 'never'> = {
  superseded: 'always',
  dangling: 'always',
  current: 'images',
  unknown: 'images',
  saved: 'never',
  other: 'never',
};

/**
 * What `sbx prune` would remove: superseded and dangling template images no container uses, networks
 * and port forwarders of sandboxes that no longer exist, and when asked stopped sandboxes unused for
 * long and every template image no container uses. Never volumes (agent logins, workspace copies),
 * saved images, images sbx did not build, or anything outside SBX_LABELS' scope when it is set.
 */
export async function planPrune(req: PruneRequest): Promise<PrunePlan> {
  const { report, df } = await survey({ allUsers: req.allUsers ?? false });
  const cutoff = Date.now() - (req.sandboxesUnusedFor ?? 0) * 1000;
  const sandboxes =
    req.sandboxesUnusedFor === undefined
      ? []
      : report.sandboxes.filter((s) => s.state === 'stopped' && Date.parse(s.lastUsed) <= cutoff);
  const going = new Set(sandboxes.map((s) => s.name));
  // Every container counts (a user's own `docker run` of an sbx image too), less the sandboxes going.
  const users = new Map<string, number>();
  for (const c of df.containers)
    if (!going.has(c.name)) users.set(c.imageId, (users.get(c.imageId) ?? 0) + 1);
  const images = report.images.filter((img) => {
    const rule = PRUNABLE[img.status];
    return !users.get(img.id) && (rule === 'always' || (rule === 'images' && req.images));
  });
  const networks = (await orphanNetworks()).filter((n) => inScope(n.labels));
  // Freed: the layers of the images going that no image staying has.
  const layers = new Map<string, Array<{ key: string; size: number }>>();
  const goingIds = new Set(images.map((i) => i.id));
  const gone = await uniqueBytes(goingIds, layers);
  const kept = await uniqueBytes(
    df.images.filter((i) => !goingIds.has(i.id) && i.sharedSize > 0).map((i) => i.id),
    layers,
  );
  const sizes = new Map([...layers.values()].flat().map((l) => [l.key, l.size]));
  let freed = sandboxes.reduce((a, s) => a + Math.max(0, s.writable), 0);
  for (const key of gone.keys) if (!kept.keys.has(key)) freed += sizes.get(key) ?? 0;
  return {
    sandboxes: sandboxes.map((s) => ({
      name: s.name,
      workspace: s.workspace,
      lastUsed: s.lastUsed,
      writable: s.writable,
    })),
    images: images.map((i) => ({ id: i.id, tags: i.tags, template: i.template, status: i.status })),
    networks: networks.map((n) => ({ name: n.name, sandbox: n.sandbox, forwarder: n.forwarder })),
    freed,
  };
}

export const emptyPlan = (plan: PrunePlan) =>
  plan.sandboxes.length + plan.images.length + plan.networks.length === 0;

/**
 * Carries out a prune plan: sandboxes (as `sbx rm` does: workspaces and logins stay), then orphan
 * networks with their forwarders, then images (each tag; the last one removes the image). What fails
 * (an image a new sandbox started using meanwhile) is reported and the rest still done.
 */
export async function applyPrune(plan: PrunePlan): Promise<PruneResult['failed']> {
  const failed: PruneResult['failed'] = [];
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      failed.push({ what, error: err instanceof Error ? err.message : String(err) });
    }
  };
  // The plan holds only the sandboxes the user may remove (theirs, or everyone's with --all-users).
  const refs = plan.sandboxes.length ? await listSandboxes({ allUsers: true }) : [];
  for (const s of plan.sandboxes)
    await attempt(`sandbox ${s.name}`, async () => {
      const ref = refs.find((r) => r.name === s.name);
      if (!ref) return;
      if (ref.state !== 'stopped')
        throw new SbxError('conflict', `${s.name} was started meanwhile; it stays.`);
      await removeSandbox(ref, { force: false });
    });
  for (const n of plan.networks) await attempt(`network ${n.name}`, () => detachSandbox(n.name));
  for (const img of plan.images)
    await attempt(`image ${img.tags[0] ?? img.id.slice(7, 19)}`, async () => {
      if (img.tags.length === 0) await removeImage(img.id);
      for (const tag of img.tags) await removeImage(tag);
    });
  return failed;
}
