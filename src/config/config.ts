import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { agentNames, getAgent } from '../agents/registry.js';
import type { EngineChoice } from '../engine/connection.js';
import { SbxError, usageError } from '../shared/errors.js';
import {
  type CredentialsMode,
  type PolicyMode,
  parseConnections,
  parseCpus,
  parseCredentials,
  parseEnvArgs,
  parseIdleStop,
  parseLogSize,
  parseMemory,
  parsePidsLimit,
  parsePort,
  parseRuntime,
} from '../shared/parse.js';

/** The user configuration, stored by conf as JSON; every key is described and checked by KEYS. */
export interface SbxConfig {
  templates?: Record<string, string>;
  env?: string[];
  caCerts?: string;
  limits?: { cpus?: number; memory?: string; pidsLimit?: number };
  ports?: string[];
  credentials?: CredentialsMode;
  networkPolicy?: PolicyMode;
  runtime?: string;
  runtimes?: Record<string, string>;
  innerSandbox?: boolean;
  innerSandboxes?: Record<string, boolean>;
  docker?: boolean;
  dockers?: Record<string, boolean>;
  devcontainer?: 'auto' | 'strict' | 'never';
  syncConfig?: boolean;
  idleStop?: string;
  engine?: { host?: string; context?: string };
  sync?: { exclude?: string[] };
  agentKeys?: 'proxy' | 'env';
  proxy?: { connections?: number; logSize?: string };
}

export interface ConfigKey {
  key: string;
  description: string;
  /** A list: `sbx config set KEY V1 V2 ...` replaces it. */
  list: boolean;
  /** The value stored for what the user typed; throws an SbxError naming the valid choices. */
  parse(raw: string): string | number | boolean;
  /** What applies when the key is unset. */
  fallback: string;
  /** Checks only `set` makes (a file may vanish later; reading the config must not fail for it). */
  checkOnSet?: (value: string | number | boolean) => void;
}

const parseBoolean = (raw: string): boolean => {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw usageError(`"${raw}" is not true or false.`, 'Give true or false.');
};

const text = (raw: string) => {
  if (!raw.trim()) throw usageError('The value is empty.', 'Give a value, or use `sbx config unset KEY`.');
  return raw;
};

/** Every configuration key: the schema `set` checks values against and every read validates the file by. */
export const KEYS: readonly ConfigKey[] = [
  ...agentNames().map((agent) => ({
    key: `templates.${agent}`,
    description: `Template of new ${agent} sandboxes: a template name, a folder with a Dockerfile, or an image reference.`,
    list: false,
    parse: text,
    fallback: `the built-in ${getAgent(agent).template} template`,
  })),
  {
    key: 'runtime',
    description:
      'OCI runtime of new sandboxes, by the name the engine registered it under (e.g. runsc for gVisor; `sbx doctor` lists them).',
    list: false,
    parse: parseRuntime,
    fallback: "SBX_RUNTIME, else the engine's default runtime (runc)",
  },
  ...agentNames().map((agent) => ({
    key: `runtimes.${agent}`,
    description: `OCI runtime of new ${agent} sandboxes (wins over runtime; SBX_RUNTIME wins over both).`,
    list: false,
    parse: parseRuntime,
    fallback: 'SBX_RUNTIME, else runtime',
  })),
  {
    key: 'innerSandbox',
    description:
      "Make new sandboxes with the inner guard (the agent's own sandbox working inside sbx's; see --inner-sandbox): true or false. Under runc it relaxes their seccomp profile, which exposes more of the host's kernel.",
    list: false,
    parse: parseBoolean,
    fallback: 'false',
  },
  ...agentNames().map((agent) => ({
    key: `innerSandboxes.${agent}`,
    description: `The inner guard for new ${agent} sandboxes: true or false (wins over innerSandbox).`,
    list: false,
    parse: parseBoolean,
    fallback: 'innerSandbox',
  })),
  {
    key: 'docker',
    description:
      'Give new sandboxes a Docker engine of their own (--docker): true or false. See docs/docker-inside.md.',
    list: false,
    parse: parseBoolean,
    fallback: 'false',
  },
  ...agentNames().map((agent) => ({
    key: `dockers.${agent}`,
    description: `Give new ${agent} sandboxes a Docker engine of their own (wins over docker): true or false.`,
    list: false,
    parse: parseBoolean,
    fallback: 'docker',
  })),
  {
    key: 'env',
    description:
      "Variables given to every agent and exec: KEY (the host's value at run time) or KEY=VALUE (stored in this file).",
    list: true,
    parse: (raw) => {
      parseEnvArgs([raw], { [raw]: '' });
      return raw;
    },
    fallback: 'none',
  },
  {
    key: 'caCerts',
    description:
      'Extra CA certificates (a PEM file or a folder of them) trusted in templates and sandboxes; "none" for none.',
    list: false,
    parse: (raw) => (raw === 'none' ? raw : resolve(text(raw).replace(/^~(?=$|\/)/, homedir()))),
    checkOnSet: (path) => {
      if (path !== 'none' && !existsSync(String(path)))
        throw usageError(
          `${path} does not exist.`,
          'Give a PEM file, a folder of .crt/.pem files, or "none".',
        );
    },
    fallback: 'SBX_CA_CERTS, else /usr/local/share/ca-certificates',
  },
  {
    key: 'limits.cpus',
    description: 'CPUs of a new sandbox (e.g. 2 or 1.5); 0 for no limit.',
    list: false,
    parse: parseCpus,
    fallback: '0 (no limit)',
  },
  {
    key: 'limits.memory',
    description: 'Memory of a new sandbox (e.g. 4g, 512m); 0 for no limit.',
    list: false,
    parse: (raw) => {
      parseMemory(raw);
      return raw.trim();
    },
    fallback: "80% of the engine's memory",
  },
  {
    key: 'limits.pidsLimit',
    description: 'Processes of a new sandbox; 0 for no limit.',
    list: false,
    parse: parsePidsLimit,
    fallback: '4096',
  },
  {
    key: 'credentials',
    description:
      "Where new sandboxes keep agent logins: sandbox (one volume per agent, shared, kept after rm), host (the host's own, mounted) or none.",
    list: false,
    parse: parseCredentials,
    fallback: 'sandbox',
  },
  {
    key: 'networkPolicy',
    description:
      "Network policy of new sandboxes: allow (everything but internal addresses and denied hosts) or deny (only allowed hosts and the agent's own).",
    list: false,
    parse: (raw) => {
      if (raw === 'allow' || raw === 'deny') return raw;
      throw usageError(`"${raw}" is not a policy.`, 'Give allow or deny.');
    },
    fallback: 'allow',
  },
  {
    key: 'proxy.connections',
    description:
      'Connections one sandbox may have open through the egress proxy at once; more are refused with 429 (the proxy is shared, so one sandbox cannot take it from the others). Set when a sandbox is created.',
    list: false,
    parse: parseConnections,
    fallback: '1024',
  },
  {
    key: 'proxy.logSize',
    description:
      "Size of a sandbox's egress log before it is rotated (one older file is kept, so at most twice this on disk), e.g. 8m. Set when a sandbox is created.",
    list: false,
    parse: (raw) => {
      parseLogSize(raw);
      return raw.trim();
    },
    fallback: '8m',
  },
  {
    key: 'idleStop',
    description:
      'Stop a new sandbox by itself once it has been idle this long (no session attached, no process using CPU), e.g. 2h; off for never. Set when a sandbox is created.',
    list: false,
    parse: (raw) => {
      parseIdleStop(raw);
      return raw.trim();
    },
    fallback: 'off',
  },
  {
    key: 'agentKeys',
    description:
      "How agents' API keys from the host reach them: proxy (the sandbox gets a placeholder, the egress proxy puts the key into requests to the agent's API) or env (the key itself is passed in, where anything in the sandbox can read it).",
    list: false,
    parse: (raw) => {
      if (raw === 'proxy' || raw === 'env') return raw;
      throw usageError(`"${raw}" is not a way to pass keys.`, 'Give proxy or env.');
    },
    fallback: 'proxy',
  },
  {
    key: 'devcontainer',
    description:
      "Build new sandboxes from the workspace's dev container (.devcontainer/devcontainer.json or .devcontainer.json) when it has one: auto (what would widen the sandbox's boundary, e.g. runArgs --privileged, is left out with a warning), strict (such a dev container is refused), or never. --template always wins.",
    list: false,
    parse: (raw) => {
      if (raw === 'auto' || raw === 'strict' || raw === 'never') return raw;
      throw usageError(`"${raw}" is not auto, strict or never.`, 'Give auto, strict or never.');
    },
    fallback: 'auto',
  },
  {
    key: 'syncConfig',
    description:
      "Copy the host's agent instructions and settings (e.g. ~/.claude/CLAUDE.md, settings.json, commands/) into the sandbox at every run: true or false.",
    list: false,
    parse: parseBoolean,
    fallback: 'false',
  },
  {
    key: 'engine.host',
    description:
      'Engine sbx uses when no --host/--context is given: unix:///path/to/socket, tcp://host:2376 (TLS from DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) or ssh://user@host. Wins over DOCKER_HOST.',
    list: false,
    parse: (raw) => {
      if (/^(unix|tcp|https?|ssh|npipe):\/\/./.test(raw.trim())) return raw.trim();
      throw usageError(
        `"${raw}" is not an engine address.`,
        'Give unix:///path, tcp://host:port or ssh://user@host.',
      );
    },
    fallback: 'DOCKER_HOST, then the Docker context, then the local Docker or Podman socket',
  },
  {
    key: 'engine.context',
    description:
      'Docker CLI context sbx uses when no --host/--context is given (one of `docker context ls`).',
    list: false,
    parse: text,
    fallback: "DOCKER_CONTEXT, else the Docker CLI's current context",
  },
  {
    key: 'sync.exclude',
    description:
      'Paths never copied between the host and a synced (remote) sandbox, gitignore-style: node_modules, *.log, /build, dist/.',
    list: true,
    parse: text,
    fallback: 'none',
  },
  {
    key: 'ports',
    description: 'Ports published by every new sandbox that gets no -p: [HOST_IP:]HOST:CONTAINER.',
    list: true,
    parse: (raw) => {
      parsePort(raw);
      return raw;
    },
    fallback: 'none',
  },
];

/** The key definition, or a usage error listing the valid keys (with the likeliest one first). */
export function configKey(key: string): ConfigKey {
  const found = KEYS.find((k) => k.key === key);
  if (found) return found;
  throw usageError(
    `Unknown configuration key "${key}".`,
    `Valid keys: ${KEYS.map((k) => k.key).join(', ')}.`,
  );
}

/** Parses what the user typed for a key into the value stored; a list takes every value given. */
export function parseConfigValue(def: ConfigKey, raws: string[]): unknown {
  if (raws.length === 0) throw usageError(`Give a value for ${def.key}.`, def.description);
  if (!def.list && raws.length > 1)
    throw usageError(`${def.key} takes one value, not ${raws.length}.`, def.description);
  const parse = (raw: string) => {
    try {
      const value = def.parse(raw);
      def.checkOnSet?.(value);
      return value;
    } catch (err) {
      if (!(err instanceof SbxError)) throw err;
      throw usageError(`${def.key}: ${err.message}`, err.hint ?? def.description);
    }
  };
  return def.list ? raws.map(parse) : parse(raws[0]!);
}

/** Each stored key with its value, in dotted form ("limits.cpus"), for validation and `config list`. */
export function flatten(config: object, prefix = ''): Array<[string, unknown]> {
  return Object.entries(config).flatMap(
    ([k, v]): Array<[string, unknown]> =>
      v !== null && typeof v === 'object' && !Array.isArray(v)
        ? flatten(v, `${prefix}${k}.`)
        : [[`${prefix}${k}`, v]],
  );
}

/** Checks a stored configuration; the first problem is returned as text naming the key. */
export function validateConfig(config: unknown): string | undefined {
  if (config === null || typeof config !== 'object' || Array.isArray(config))
    return 'the file does not hold a JSON object';
  for (const [key, value] of flatten(config)) {
    const def = KEYS.find((k) => k.key === key);
    if (!def) return `"${key}" is not a configuration key (valid: ${KEYS.map((k) => k.key).join(', ')})`;
    const values = def.list ? value : [value];
    if (!Array.isArray(values)) return `${key} must be a list of strings, not ${JSON.stringify(value)}`;
    for (const item of values) {
      if (typeof item !== 'string' && typeof item !== 'number')
        return `${key} has the invalid value ${JSON.stringify(item)}`;
      try {
        const parsed = def.parse(String(item));
        if (typeof parsed !== typeof item)
          return `${key} must be a ${typeof parsed}, not ${JSON.stringify(item)}`;
      } catch (err) {
        return `${key} has the invalid value ${JSON.stringify(item)}: ${(err as Error).message}`;
      }
    }
  }
  return undefined;
}

/** Where sbx keeps its configuration and user templates. SBX_CONFIG_DIR overrides it. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SBX_CONFIG_DIR) return env.SBX_CONFIG_DIR;
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Preferences', 'sbx');
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'sbx');
}

export const configFile = () => join(configDir(), 'config.json');

/** Where sbx keeps what it can fetch again (dev container features from registries): SBX_CACHE_DIR, else the platform's cache folder. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SBX_CACHE_DIR) return env.SBX_CACHE_DIR;
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'sbx');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'sbx');
}

interface Store {
  store: SbxConfig;
  set(key: string, value: unknown): void;
  delete(key: string): void;
}

const broken = (problem: string, cause?: unknown) =>
  new SbxError('config', `The configuration file ${configFile()} cannot be used: ${problem}.`, {
    cause,
    hint: 'Fix it by hand (`sbx config set --help` lists the keys and values), or move it away to start over; sbx never resets it, so your settings stay until you decide.',
  });

let loaded: SbxConfig | undefined;

/**
 * Reads and validates the configuration. Reading needs no library (it is on the path of every
 * `sbx run`); a broken file is an error naming the file and the problem, never a reset.
 */
/** The engine the config names, if any (--host/--context on the command line win over it). */
export function configuredEngine(config: SbxConfig): EngineChoice | undefined {
  const { host, context } = config.engine ?? {};
  if (!host && !context) return undefined;
  return host
    ? { host, from: `config engine.host (${configFile()})` }
    : { context, from: `config engine.context (${configFile()})` };
}

export async function readConfig(): Promise<SbxConfig> {
  if (loaded) return loaded;
  let raw: string;
  try {
    raw = await readFile(configFile(), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      loaded = {};
      return loaded;
    }
    throw broken((err as Error).message, err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw broken(`it is not valid JSON (${(err as Error).message})`, err);
  }
  const problem = validateConfig(parsed);
  if (problem) throw broken(problem);
  loaded = parsed as SbxConfig;
  return loaded;
}

/** conf, for writes (atomic, dotted keys); the file is validated first so a write never hides a broken one. */
async function open(): Promise<Store> {
  await readConfig();
  const { default: Conf } = await import('conf');
  const store = new Conf<SbxConfig>({
    projectName: 'sbx',
    cwd: configDir(),
    configName: 'config',
    clearInvalidConfig: false,
  }) as unknown as Store;
  return store;
}

/** Stores a value already checked by parseConfigValue. */
export async function setConfig(key: string, value: unknown): Promise<void> {
  (await open()).set(key, value);
  loaded = undefined;
}

export async function unsetConfig(key: string): Promise<void> {
  const store = await open();
  store.delete(key);
  // Leave no empty sections behind ("limits": {}), so the file stays as small as what was set.
  const section = key.split('.')[0]!;
  const value = (store.store as Record<string, unknown>)[section];
  if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0)
    store.delete(section);
  loaded = undefined;
}
