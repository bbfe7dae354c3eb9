import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { notFoundError, usageError } from './errors.js';

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

export interface PortMapping {
  hostIp: string;
  /** 0: the engine picks a free port. */
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/**
 * `-p [HOST_IP:]HOST:CONTAINER[/tcp|/udp]`, or `-p CONTAINER`. Without HOST_IP the port is bound to
 * 127.0.0.1 only (unlike docker's 0.0.0.0): a sandbox's dev server is not offered to the network
 * unless the user says so. HOST 0 asks the engine for a free port.
 */
export function parsePort(arg: string): PortMapping {
  const bad = (why: string) =>
    usageError(
      `Invalid port "${arg}": ${why}.`,
      'Use -p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/udp], e.g. -p 3000:3000, -p 0:8080 (a free port), -p 0.0.0.0:8080:80.',
    );
  const [spec, protocol = 'tcp', ...rest] = arg.split('/');
  if (rest.length > 0 || (protocol !== 'tcp' && protocol !== 'udp')) throw bad('the protocol is tcp or udp');
  let hostIp = '127.0.0.1';
  let ports = spec ?? '';
  const ipv6 = /^\[([0-9a-fA-F:.]+)\]:(.*)$/.exec(ports);
  if (ipv6) {
    hostIp = ipv6[1]!;
    ports = ipv6[2]!;
  } else if (ports.split(':').length === 3) {
    hostIp = ports.slice(0, ports.indexOf(':'));
    ports = ports.slice(hostIp.length + 1);
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(hostIp)) throw bad(`"${hostIp}" is not an IP address`);
  }
  const parts = ports.split(':');
  if (parts.length > 2) throw bad('too many colons');
  const numbers = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : Number.NaN));
  const containerPort = numbers[numbers.length - 1]!;
  const hostPort = parts.length === 2 ? numbers[0]! : 0;
  if (!(containerPort >= 1 && containerPort <= 65535))
    throw bad('the container port is a number from 1 to 65535');
  if (!(hostPort >= 0 && hostPort <= 65535)) throw bad('the host port is a number from 0 to 65535');
  return { hostIp, hostPort, containerPort, protocol };
}

export const portKey = (p: PortMapping) => `${p.containerPort}/${p.protocol}`;

/** Resource limits of a sandbox; 0 means no limit. */
export interface Limits {
  /** CPUs, fractions allowed. */
  cpus: number;
  /** Bytes. */
  memory: number;
  pidsLimit: number;
}

/** What a sandbox gets when neither flags nor config say otherwise (memory: a share of the engine's). */
export const DEFAULT_LIMITS = { cpus: 0, pidsLimit: 4096, memoryShare: 0.8 } as const;

export function parseCpus(arg: string): number {
  const value = /^\d+(\.\d+)?$/.test(arg.trim()) ? Number(arg) : Number.NaN;
  if (!(value >= 0) || (value > 0 && value < 0.01))
    throw usageError(
      `Invalid CPU limit "${arg}".`,
      'Give a number of CPUs such as 2 or 1.5; 0 means no limit.',
    );
  return value;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** `512m`, `8g`, `1.5g`, or bytes; 0 means no limit. Below 64 MiB no agent starts, so it is refused. */
export function parseMemory(arg: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$/i.exec(arg.trim());
  const bytes = match ? Math.round(Number(match[1]) * UNITS[match[2]!.toLowerCase()]!) : Number.NaN;
  if (!(bytes === 0 || bytes >= 64 * 2 ** 20))
    throw usageError(
      `Invalid memory limit "${arg}".`,
      'Give a size of at least 64m, such as 512m, 4g or 1.5g; 0 means no limit.',
    );
  return bytes;
}

/** The egress proxy's log size per sandbox before it is rotated: `8m`, `512k`, or bytes; at least 64k. */
export function parseLogSize(arg: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$/i.exec(arg.trim());
  const bytes = match ? Math.round(Number(match[1]) * UNITS[match[2]!.toLowerCase()]!) : Number.NaN;
  if (!(bytes >= 64 * 2 ** 10))
    throw usageError(`Invalid log size "${arg}".`, 'Give a size of at least 64k, such as 8m or 512k.');
  return bytes;
}

/** Connections one sandbox may have open through the egress proxy at once. */
export function parseConnections(arg: string): number {
  const value = /^\d+$/.test(arg.trim()) ? Number(arg) : Number.NaN;
  if (!(value >= 16 && value <= 65_535))
    throw usageError(
      `Invalid connection cap "${arg}".`,
      'Give a whole number from 16 to 65535 (a browser-driving agent may hold a few hundred).',
    );
  return value;
}

export function parsePidsLimit(arg: string): number {
  const value = /^\d+$/.test(arg.trim()) ? Number(arg) : Number.NaN;
  if (!(value === 0 || value >= 64))
    throw usageError(
      `Invalid process limit "${arg}".`,
      'Give a whole number of at least 64 (an agent and its build tools need a few hundred); 0 means no limit.',
    );
  return value;
}

/** An OCI runtime name as the engine registers it (daemon.json "runtimes"), e.g. runsc or runc. */
export function parseRuntime(arg: string): string {
  const value = arg.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/.test(value))
    throw usageError(
      `Invalid runtime name "${arg}".`,
      'Give the name the engine registered the runtime under (see `sbx doctor`), e.g. runsc for gVisor or runc.',
    );
  return value;
}

/** Bytes as people read them (docker-like, binary units): 8589934592 → "8GiB", 1536 → "1.5KiB", 12 → "12B". */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['TiB', 2 ** 40],
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))}${unit}`;
  }
  return `${bytes}B`;
}

/** Docker's container-name rule, for --name. */
export function parseSandboxName(arg: string): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(arg))
    throw usageError(
      `Invalid sandbox name "${arg}".`,
      'Use letters, digits, _, . and -, starting with a letter or digit (at most 63 characters).',
    );
  return arg;
}

/** Where a new sandbox keeps agent logins (--credentials, config credentials). */
export const CREDENTIAL_MODES = ['sandbox', 'host', 'none'] as const;
export type CredentialsMode = (typeof CREDENTIAL_MODES)[number];

export function parseCredentials(arg: string): CredentialsMode {
  if ((CREDENTIAL_MODES as readonly string[]).includes(arg)) return arg as CredentialsMode;
  throw usageError(
    `Invalid credentials mode "${arg}".`,
    'Use sandbox (the agent settings per sandbox, your login shared by your sandboxes and kept after rm), host (your own agent login, mounted) or none (nothing kept).',
  );
}

/** The egress policy's modes: allow everything but what is blocked, or deny everything but what is allowed. */
export const POLICY_MODES = ['allow', 'deny'] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** `90s`, `30m`, `2h`, `30d`, `1w` (or combined: `1h30m`) as seconds; bare numbers are refused. */
export function parseDuration(arg: string, flag = 'duration'): number {
  const text = arg.trim().toLowerCase();
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)];
  const seconds = parts.reduce((sum, m) => sum + Number(m[1]) * DURATION_UNITS[m[2]!]!, 0);
  if (parts.length === 0 || parts.map((m) => m[0]).join('') !== text || !(seconds > 0))
    throw usageError(
      `Invalid ${flag} "${arg}".`,
      'Give a duration such as 90s, 30m, 2h, 30d or 1h30m (s, m, h, d, w).',
    );
  return Math.round(seconds);
}

/** An idle-stop setting in seconds: a duration, or off/0 for never (0). */
export function parseIdleStop(arg: string, flag = 'idle stop'): number {
  const text = arg.trim().toLowerCase();
  if (text === 'off' || text === '0' || text === 'never') return 0;
  const seconds = parseDuration(arg, flag);
  if (seconds < 10)
    throw usageError(`The ${flag} "${arg}" is too short.`, 'Give at least 10s (e.g. 30m or 2h), or off.');
  return seconds;
}
