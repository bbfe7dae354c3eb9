import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import dockerignore, { type Ignore } from '@balena/dockerignore';
import type { CaCert } from '../config/tls-proxy.js';
import { notFoundError } from '../shared/errors.js';

/** Bumped when the way sbx turns a folder into an image changes, so every template rebuilds. */
const FORMAT = 'sbx-template-v1';

/** Built-in templates ship in the package's templates/ folder. */
export const BUILTIN_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../templates');

export type TemplateSource =
  | { kind: 'folder'; name: string; dir: string; builtin: boolean }
  | { kind: 'image'; ref: string };

export const builtinNames = (): string[] =>
  readdirSync(BUILTIN_DIR, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(BUILTIN_DIR, e.name, 'Dockerfile')))
    .map((e) => e.name);

/** The image repository of a folder template: built-in ones are sbx/NAME, custom ones sbx/custom-NAME. */
export const repositoryOf = (source: Extract<TemplateSource, { kind: 'folder' }>) =>
  source.builtin
    ? `sbx/${source.name}`
    : `sbx/custom-${source.name.toLowerCase().replace(/[^a-z0-9._-]/g, '-')}`;

/**
 * Resolves what the user asked for: a path to a folder with a Dockerfile, a template name (the
 * workspace's .sbx/templates/NAME, then the user's templates folder, then the built-in ones), or an
 * image reference (anything with a ':', '/' or '@' that is not a folder).
 */
export function resolveTemplate(spec: string, workspace: string, userTemplatesDir: string): TemplateSource {
  const asPath = resolve(spec);
  if ((spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('~')) && !existsSync(asPath)) {
    throw notFoundError(
      `The template folder ${asPath} does not exist.`,
      'Give a folder that holds a Dockerfile, a template name, or an image reference.',
    );
  }
  if (existsSync(asPath) && statSync(asPath).isDirectory()) return folder(basename(asPath), asPath, false);
  const looksLikeName = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/.test(spec);
  if (looksLikeName) {
    for (const dir of [join(workspace, '.sbx', 'templates', spec), join(userTemplatesDir, spec)]) {
      if (existsSync(join(dir, 'Dockerfile'))) return folder(spec, dir, false);
    }
    if (builtinNames().includes(spec)) return folder(spec, join(BUILTIN_DIR, spec), true);
  }
  if (/[:/@]/.test(spec)) return { kind: 'image', ref: spec };
  throw notFoundError(
    `No template named "${spec}": looked in ${join(workspace, '.sbx', 'templates')}, ${userTemplatesDir} and the built-in ones (${builtinNames().join(', ')}).`,
    'Create the folder with a Dockerfile there, give a path (./my-template), or an image reference with a tag (name:tag).',
  );
}

function folder(name: string, dir: string, builtin: boolean): TemplateSource {
  if (!existsSync(join(dir, 'Dockerfile'))) {
    throw notFoundError(
      `The template folder ${dir} has no Dockerfile.`,
      'A template folder needs a Dockerfile at its top.',
    );
  }
  return { kind: 'folder', name, dir, builtin };
}

/** Built-in templates this Dockerfile starts FROM (sbx/NAME), which must be built first. */
export function parentTemplates(dockerfile: string): string[] {
  const parents: string[] = [];
  for (const match of dockerfile.matchAll(/^\s*FROM\s+(?:--\S+\s+)*(\S+)/gim)) {
    const from = /^(?:localhost\/)?sbx\/([a-z0-9._-]+)(?::latest)?$/.exec(match[1]!);
    if (from && !parents.includes(from[1]!)) parents.push(from[1]!);
  }
  return parents;
}

export interface ContextFile {
  path: string;
  mode: number;
}

/** The files of a build context, as Docker would send them: .dockerignore honoured, sorted. */
export function contextFiles(dir: string): { files: ContextFile[]; ignored: Ignore } {
  const ignoreFile = join(dir, '.dockerignore');
  const ignored = (dockerignore as unknown as (o?: object) => Ignore)().add(
    existsSync(ignoreFile)
      ? readFileSync(ignoreFile, 'utf8')
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith('#'))
      : [],
  );
  const files: ContextFile[] = [];
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      const rel = relative(dir, full);
      if (ignored.ignores(rel) && rel !== 'Dockerfile') continue;
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) files.push({ path: rel, mode: statSync(full).mode });
    }
  };
  walk(dir);
  files.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { files, ignored };
}

/**
 * The content hash of a folder template: its context files (path, executable bit, content), the
 * extra files sbx adds to the context, and the hashes of the templates it starts FROM.
 */
export function contentHash(dir: string, extra: CaCert[], parentHashes: string[]): string {
  const hash = createHash('sha256').update(FORMAT);
  for (const parent of parentHashes) hash.update(`parent\0${parent}\0`);
  for (const file of contextFiles(dir).files) {
    hash.update(`file\0${file.path}\0${file.mode & 0o111 ? 'x' : '-'}\0`);
    hash.update(readFileSync(join(dir, file.path)));
  }
  for (const cert of extra) hash.update(`cert\0${cert.name}\0${cert.pem}`);
  return hash.digest('hex');
}
