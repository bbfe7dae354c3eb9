import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { AGENTS } from '../agents/registry.js';
import { configDir } from '../config/config.js';
import {
  containerChanges,
  inspectContainer,
  listContainers,
  startContainer,
  stopContainer,
} from '../engine/containers.js';
import { execCapture } from '../engine/exec.js';
import { buildImage, inspectImage, removeImage } from '../engine/images.js';
import { notFoundError, SbxError, usageError } from '../shared/errors.js';
import { extraLabels, LABEL } from '../shared/labels.js';
import { builtinNames, resolveTemplate } from '../templates/template.js';
import type { SandboxRef } from './discovery.js';

/** The image a saved sandbox becomes: `--template NAME` finds it when no template folder has that name. */
export const savedImageRef = (name: string) => `sbx/saved-${name}:latest`;

/** A save name: one image-name component (lowercase letters, digits, separators . _ - inside). */
export const SAVE_NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

export interface SaveResult {
  name: string;
  image: string;
  id: string;
  /** The whole image, and the layer the sandbox's changes added to its template's image. */
  size: number;
  added: number;
  from: string;
  /** Paths changed in the sandbox that were left out (state, history, sbx's own settings). */
  excluded: number;
}

/**
 * What of a sandbox's changes never goes into a saved image: its mounts (the workspace, agent-state
 * volumes, -v paths) and the folders made only to hold them; runtime and temporary files; what
 * sbx-init writes for this sandbox's user (git identity, proxy settings); every agent's state and
 * login folders (kept in the writable layer with --credentials none); shell and tool histories.
 */
export function excluded(mounts: string[], homes: string[]): (path: string, kind: number) => boolean {
  const under = (path: string, root: string) => path === root || path.startsWith(`${root}/`);
  const roots = [
    ...mounts,
    '/run',
    '/tmp',
    '/var/tmp',
    '/proc',
    '/sys',
    '/dev',
    '/etc/gitconfig',
    '/etc/hostname',
    '/etc/hosts',
    '/etc/resolv.conf',
    '/etc/apt/apt.conf.d/90sbx-proxy',
    ...homes.flatMap((home) =>
      [
        ...AGENTS.flatMap((a) => (a.state ? [a.state.dir, ...a.state.host, ...a.state.credentials] : [])),
        '.bash_history',
        '.python_history',
        '.node_repl_history',
        '.lesshst',
        '.viminfo',
        '.wget-hsts',
        '.ssh',
        '.gnupg',
        '.docker',
        '.git-credentials',
        '.netrc',
        '.npmrc',
        '.pypirc',
        '.config/gh',
      ].map((p) => (p.startsWith('/') ? p : `${home}/${p}`)),
    ),
  ];
  return (path, kind) =>
    roots.some((root) => under(path, root)) ||
    // A folder added only as the way to a mount point (e.g. the workspace's parents).
    (kind === 1 && mounts.some((m) => m.startsWith(`${path}/`)));
}

/**
 * Turns a sandbox as it is now into an image that `--template NAME` starts new sandboxes from: its
 * template's image plus one layer of the files it changed (what the agent installed), read from the
 * engine's list of changes and copied out with tar inside the sandbox, minus what `excluded` leaves
 * out. Built (not committed) so the image has its template's configuration and labels only: nothing
 * of this sandbox's environment, labels or identity. A stopped sandbox is started for the copy and
 * stopped again.
 */
export async function saveSandbox(
  sandbox: SandboxRef,
  name: string,
  options: { force: boolean; cwd: string; onNote: (note: string) => void },
): Promise<SaveResult> {
  if (!SAVE_NAME.test(name) || name.length > 100)
    throw usageError(
      `"${name}" is not a valid image name.`,
      'Use lowercase letters and digits, with . _ or - between them (e.g. my-setup).',
    );
  if (builtinNames().includes(name))
    throw usageError(`"${name}" is a built-in template's name.`, `Choose another name, e.g. my-${name}.`);
  let folder: string | undefined;
  try {
    const source = resolveTemplate(name, options.cwd, join(configDir(), 'templates'));
    if (source.kind === 'folder') folder = source.dir;
  } catch {}
  if (folder)
    throw new SbxError(
      'conflict',
      `The template folder ${folder} is named ${name}: --template ${name} would use it.`,
      {
        hint: 'Choose another name.',
      },
    );
  const ref = savedImageRef(name);
  const previous = await inspectImage(ref);
  if (previous && !options.force)
    throw new SbxError('conflict', `A saved template named ${name} exists (${ref}).`, {
      hint: `Choose another name, or replace it with \`sbx save ${sandbox.name} ${name} --force\`.`,
    });
  const info = await inspectContainer(sandbox.id);
  if (!info) throw notFoundError(`The sandbox ${sandbox.name} was removed meanwhile.`, 'See `sbx ls`.');
  const started = !info.State.Running;
  if (started) await startContainer(info.Id);
  else
    options.onNote(
      `${sandbox.name} is running: files its processes have open are saved as they are at this moment.`,
    );
  const work = mkdtempSync(join(tmpdir(), 'sbx-save-'));
  try {
    const skip = excluded(
      (info.Mounts ?? []).map((m) => m.Destination),
      ['/home/agent', '/root'],
    );
    const changes = await containerChanges(info.Id);
    const kept = changes.filter((c) => !skip(c.path, c.kind));
    const copied = kept.filter((c) => c.kind !== 2).map((c) => c.path.slice(1));
    const deleted = kept.filter((c) => c.kind === 2).map((c) => c.path);
    const diff = join(work, 'changes.tar');
    const out = createWriteStream(diff);
    const tar = await execCapture(
      info.Id,
      ['tar', '-C', '/', '-cf', '-', '--no-recursion', '--null', '-T', '-'],
      { stdin: Readable.from([Buffer.from(copied.map((p) => `${p}\0`).join(''))]), stdout: out },
    );
    await new Promise<void>((resolve, reject) =>
      out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    // tar says 1 when a file changed while it was read: saved as it was.
    if (tar.code > 1)
      throw new SbxError(
        'internal',
        `Copying the changes out of ${sandbox.name} failed: ${tar.stderr.trim()}`,
      );
    const dockerfile = [
      `FROM ${info.Image}`,
      'ADD changes.tar /',
      ...(deleted.length
        ? [
            'COPY deleted /.sbx-deleted',
            'RUN ["/bin/sh", "-c", "tr \'\\\\n\' \'\\\\0\' < /.sbx-deleted | xargs -0 rm -rf -- && rm -f /.sbx-deleted"]',
          ]
        : []),
      '',
    ].join('\n');
    const { pack } = await import('tar-stream');
    const context = pack();
    context.entry({ name: 'Dockerfile' }, dockerfile);
    if (deleted.length) context.entry({ name: 'deleted' }, `${deleted.join('\n')}\n`);
    const added = statSync(diff).size;
    createReadStream(diff).pipe(
      context.entry({ name: 'changes.tar', size: added }, (err) =>
        err ? context.destroy(err) : context.finalize(),
      ),
    );
    const id = await buildImage({
      context: context as unknown as Readable,
      tags: [ref],
      labels: { ...extraLabels(), [LABEL.saved]: name, [LABEL.savedFrom]: sandbox.name },
      buildargs: {},
      nocache: true,
      onEvent: () => {},
    });
    if (previous && previous.Id !== id) {
      const users = await listContainers([]);
      if (!users.some((c) => c.ImageID === previous.Id)) await removeImage(previous.Id).catch(() => {});
    }
    const image = await inspectImage(id);
    return {
      name,
      image: ref,
      id,
      size: image?.Size ?? -1,
      added,
      from: sandbox.name,
      excluded: changes.length - kept.length,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
    if (started) await stopContainer(info.Id, 1).catch(() => {});
  }
}
