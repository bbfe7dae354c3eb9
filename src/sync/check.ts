/**
 * What the host accepts from a sandbox's side of a sync, decided before anything is written: the
 * scan's answer (a tree of paths) and the entries of the archive that carries files back. Everything
 * there comes from code that root inside the sandbox can replace, so nothing in it is trusted.
 */
import type { Tree } from './tree.js';
import { pathProblem } from './tree.js';

/** More paths than this in one scan is refused (the host holds the whole tree in memory). */
export const MAX_SCAN_ENTRIES = 2_000_000;

const ID = /^(dir|file[-x]:[0-9a-f]{64}|link:[^\0]{1,4095})$/;

export interface Refusal {
  path: string;
  reason: string;
}

const isStat = (n: unknown) =>
  typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= Number.MAX_SAFE_INTEGER;

/**
 * A sandbox's scan as a tree the plan can use, or the reasons it is refused: a JSON object of plain
 * relative paths (pathProblem) to `{id, size, mtimeMs}` with a well-formed id, and a consistent
 * tree: every path's folder is in it as a folder (so nothing is said to be under a symlink or a file).
 */
export function checkScan(answer: unknown): { tree: Tree; refused: Refusal[] } {
  const refused: Refusal[] = [];
  const tree: Tree = Object.create(null);
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer))
    return { tree, refused: [{ path: '', reason: 'the scan did not answer with a list of files' }] };
  const entries = Object.entries(answer as Record<string, unknown>);
  if (entries.length > MAX_SCAN_ENTRIES)
    return {
      tree,
      refused: [{ path: '', reason: `more than ${MAX_SCAN_ENTRIES.toLocaleString('en')} paths` }],
    };
  for (const [path, value] of entries) {
    const problem = pathProblem(path);
    if (problem) {
      refused.push({ path, reason: problem });
      continue;
    }
    const v = value as { id?: unknown; size?: unknown; mtimeMs?: unknown } | null;
    if (
      typeof v !== 'object' ||
      v === null ||
      typeof v.id !== 'string' ||
      !ID.test(v.id) ||
      !isStat(v.size) ||
      !isStat(v.mtimeMs)
    ) {
      refused.push({ path, reason: 'a malformed entry' });
      continue;
    }
    tree[path] = { id: v.id, size: v.size as number, mtimeMs: v.mtimeMs as number };
  }
  for (const path of Object.keys(tree)) {
    const slash = path.lastIndexOf('/');
    if (slash < 0) continue;
    const parent = path.slice(0, slash);
    if (tree[parent]?.id !== 'dir')
      refused.push({
        path,
        reason: tree[parent]
          ? `its folder ${parent} is not a folder in the same scan`
          : `its folder ${parent} is missing from the scan`,
      });
  }
  return { tree, refused };
}

/** An archive entry's header, as tar-stream gives it. */
export interface TarHeader {
  name: string;
  type?: string | null;
  size?: number | null;
  mode?: number | null;
  linkname?: string | null;
}

/**
 * Why an entry of the archive a sandbox sent back is refused, or undefined: it must be one of the
 * files asked for (by its exact name, once), a regular file or a symlink as the scan said, and
 * no larger than the scan said (a file that grew meanwhile is copied at the next sync). Hard links,
 * devices, fifos and folders are never asked for; set-user-ID and other special mode bits are
 * dropped by the extraction.
 */
export function tarEntryProblem(
  header: TarHeader,
  wanted: ReadonlyMap<string, { id: string; size: number }>,
  seen: Set<string>,
): string | undefined {
  const name = header.name;
  const want = wanted.get(name);
  if (!want) return 'not one of the files asked for';
  if (seen.has(name)) return 'sent twice';
  seen.add(name);
  const type = header.type ?? 'file';
  if (want.id.startsWith('link:')) {
    if (type !== 'symlink') return `a ${type} where the scan said symlink`;
    if (!header.linkname || header.linkname.includes('\0')) return 'a symlink without a target';
    return undefined;
  }
  if (type !== 'file') return `a ${type} where the scan said file`;
  if ((header.size ?? 0) > want.size) return `${header.size} bytes where the scan said ${want.size}`;
  return undefined;
}
