import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { notFoundError, usageError } from '../cli/errors.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface EnvVar {
  name: string;
  value: string;
}

/**
 * `-e KEY=VALUE` or `-e KEY` (the host's value; skipped, and reported, when the host has none).
 * Returns the variables and the names that were asked for but are unset on the host.
 */
export function parseEnvArgs(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { vars: EnvVar[]; unset: string[] } {
  const vars: EnvVar[] = [];
  const unset: string[] = [];
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (!ENV_NAME.test(name)) {
      throw usageError(
        `Invalid environment variable "${arg}": the name "${name}" is not a valid variable name.`,
        'Use -e KEY=VALUE, or -e KEY to pass the value the variable has here.',
      );
    }
    if (eq !== -1) vars.push({ name, value: arg.slice(eq + 1) });
    else if (env[name] !== undefined) vars.push({ name, value: env[name]! });
    else unset.push(name);
  }
  return { vars, unset };
}

/** An env file in Docker's format: KEY=VALUE lines, KEY alone takes the host's value, # comments. */
export function parseEnvFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): { vars: EnvVar[]; unset: string[] } {
  const full = resolve(path);
  if (!existsSync(full))
    throw notFoundError(
      `The env file ${full} does not exist.`,
      'Give the path of a file with KEY=VALUE lines.',
    );
  const lines = readFileSync(full, 'utf8').split(/\r?\n/);
  const args: string[] = [];
  lines.forEach((raw, index) => {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) return;
    const name = line.split('=')[0]!;
    if (!ENV_NAME.test(name)) {
      throw usageError(
        `Invalid line ${index + 1} in the env file ${full}: "${name}" is not a valid variable name.`,
        'Each line is KEY=VALUE, KEY, or a # comment.',
      );
    }
    args.push(line);
  });
  return parseEnvArgs(args, env);
}

export interface VolumeMount {
  host: string;
  container: string;
  readOnly: boolean;
}

/** `-v HOST:CONTAINER[:ro|rw]`; the host path is resolved (~ expanded) and must exist. */
export function parseVolume(arg: string, cwd = process.cwd()): VolumeMount {
  const parts = arg.split(':');
  const mode = parts.length === 3 ? parts.pop()! : undefined;
  const [hostRaw, container] = parts;
  if (
    parts.length !== 2 ||
    !hostRaw ||
    !container ||
    (mode !== undefined && mode !== 'ro' && mode !== 'rw')
  ) {
    throw usageError(
      `Invalid volume "${arg}".`,
      'Use -v HOST_PATH:CONTAINER_PATH, optionally followed by :ro or :rw.',
    );
  }
  if (!isAbsolute(container)) {
    throw usageError(
      `Invalid volume "${arg}": the path inside the sandbox, "${container}", must be absolute.`,
      'For example: -v ./data:/data:ro',
    );
  }
  const host = resolve(cwd, hostRaw.startsWith('~') ? hostRaw.replace(/^~/, homedir()) : hostRaw);
  if (!existsSync(host)) {
    throw notFoundError(
      `The host path ${host} of the volume "${arg}" does not exist.`,
      'Create it first, or fix the path; sbx does not create host folders for you.',
    );
  }
  return { host, container, readOnly: mode === 'ro' };
}

export const bindOf = (v: VolumeMount) => `${v.host}:${v.container}${v.readOnly ? ':ro' : ''}`;
