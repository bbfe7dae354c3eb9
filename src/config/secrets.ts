/**
 * Secrets held by sbx on the host, outside every sandbox: their values (or where to get them) live
 * in `secrets.json` in sbx's config folder, a file only its owner can read (0600). Sandboxes get a
 * placeholder; the egress proxy swaps in the value on requests to the secret's hosts.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SbxError } from '../shared/errors.js';
import { configDir } from './config.js';

/** Where a secret's value comes from: stored (read from stdin once), the host's environment, or a command. */
export type SecretSource =
  | { kind: 'stdin'; value: string }
  | { kind: 'env'; env: string }
  | { kind: 'command'; command: string };

export interface StoredSecret {
  name: string;
  hosts: string[];
  /** The request header the value goes into (lower case). */
  header: string;
  /** The header's value, `{}` standing for the secret (e.g. `Bearer {}`). */
  format: string;
  source: SecretSource;
  /** A query parameter that may carry the placeholder too (e.g. Google's `key`). */
  query?: string | undefined;
  /** Only replace the placeholder where a request carries it; never add the header to one without it. */
  replaceOnly?: boolean | undefined;
}

/** What `sbx secret ls` shows: never a value. */
export interface SecretView {
  name: string;
  hosts: string[];
  header: string;
  format: string;
  source: string;
  query?: string;
  replaceOnly?: boolean;
}

export const secretsFile = () => join(configDir(), 'secrets.json');

export const viewOfSecret = (s: StoredSecret): SecretView => ({
  name: s.name,
  hosts: s.hosts,
  header: s.header,
  format: s.format,
  ...(s.query ? { query: s.query } : {}),
  ...(s.replaceOnly ? { replaceOnly: true } : {}),
  source:
    s.source.kind === 'stdin'
      ? 'stored (stdin)'
      : s.source.kind === 'env'
        ? `host variable ${s.source.env}`
        : `command: ${s.source.command}`,
});

/** A secret's name is also the variable its placeholder is given in inside sandboxes. */
export function secretNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name))
    return 'a secret name is a variable name: letters, digits and _, not starting with a digit, at most 64';
  if (
    RESERVED_NAMES.includes(name.toUpperCase()) ||
    /^(SBX_|LD_|NODE_|GIT_|SSL_)/i.test(name) ||
    /_PROXY$/i.test(name)
  )
    return `${name} is a variable the sandbox itself needs (its placeholder would replace it)`;
  return undefined;
}

/** Variables a placeholder must not replace: the sandbox's own, and those that steer its programs. */
const RESERVED_NAMES = [
  'PATH',
  'HOME',
  'USER',
  'SHELL',
  'TERM',
  'PWD',
  'LANG',
  'HOSTNAME',
  'TMPDIR',
  'REQUESTS_CA_BUNDLE',
  'CURL_CA_BUNDLE',
];

/** Headers that are the connection's own, not credentials: never set from a secret. */
const RESERVED_HEADERS = [
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'upgrade',
  'te',
  'trailer',
];

export function headerProblem(header: string): string | undefined {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header))
    return 'a header name is letters, digits and -, with no spaces or colon';
  if (RESERVED_HEADERS.includes(header.toLowerCase()) || header.toLowerCase().startsWith('proxy-'))
    return `${header} belongs to the connection, not to a credential`;
  return undefined;
}

/** The stored secrets; none when the store does not exist. An unreadable or shared store is an error. */
export function readSecrets(file = secretsFile()): StoredSecret[] {
  let text: string;
  try {
    const mode = statSync(file).mode & 0o777;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0)
      throw new SbxError(
        'config',
        `The secret store ${file} can be read by other users (mode ${mode.toString(8)}).`,
        {
          hint: `Make it yours alone: chmod 600 ${file}; then rotate the secrets in it, which others could read.`,
        },
      );
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof SbxError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new SbxError('config', `The secret store ${file} cannot be read: ${(err as Error).message}.`, {
      cause: err,
      hint: 'Check its owner and permissions (it should be yours, mode 600).',
    });
  }
  try {
    const parsed = JSON.parse(text) as { secrets?: StoredSecret[] };
    if (!Array.isArray(parsed.secrets)) throw new Error('no "secrets" list');
    return parsed.secrets;
  } catch (err) {
    throw new SbxError('config', `The secret store ${file} is not valid: ${(err as Error).message}.`, {
      cause: err,
      hint: 'Fix it by hand or move it away (sbx never resets it); then set the secrets again.',
    });
  }
}

/** Writes the store atomically, readable by its owner only (the folder too, when sbx makes it). */
export function writeSecrets(secrets: StoredSecret[], file = secretsFile()): void {
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ secrets }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

export function removeSecret(name: string): StoredSecret {
  const all = readSecrets();
  const found = all.find((s) => s.name === name);
  if (!found)
    throw new SbxError('notFound', `There is no secret named ${name}.`, {
      hint: all.length
        ? `Stored: ${all.map((s) => s.name).join(', ')}.`
        : 'No secrets are stored; see `sbx secret set --help`.',
    });
  writeSecrets(all.filter((s) => s.name !== name));
  return found;
}

/**
 * The value of a secret now: the stored one, the host variable's, or what its command prints (run
 * on the host by the shell, each time a sandbox starts). A command that fails or prints nothing, or
 * an unset variable, is an error naming it.
 */
export async function resolveSecret(
  secret: Pick<StoredSecret, 'name' | 'source'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const { source } = secret;
  if (source.kind === 'stdin') return source.value;
  if (source.kind === 'env') {
    const value = env[source.env];
    if (!value)
      throw new SbxError(
        'config',
        `The secret ${secret.name} comes from the host variable ${source.env}, which is not set.`,
        {
          hint: `Set ${source.env} before starting the sandbox, or store the value instead (sbx secret set ${secret.name} ... < file).`,
        },
      );
    return value;
  }
  const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(
      '/bin/sh',
      ['-c', source.command],
      { timeout: 60_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    ),
  );
  const value = out.stdout.replace(/\r?\n$/, '');
  if (out.code !== 0 || !value.trim())
    throw new SbxError(
      'config',
      `The command of the secret ${secret.name}, \`${source.command}\`, ${out.code !== 0 ? `exited with ${out.code}` : 'printed nothing'}${out.stderr.trim() ? `: ${out.stderr.trim().split('\n').slice(-1)[0]}` : ''}.`,
      {
        hint: `Run it yourself to see why; fix it, or change it with sbx secret set ${secret.name} --command '...' (nothing was started).`,
      },
    );
  return value;
}
