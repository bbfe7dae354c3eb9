/**
 * A workspace's dev container (devcontainer.json): found, parsed as JSONC, checked and reduced to
 * what sbx honours, with what it refuses or ignores and why. Pure apart from reading the files; the
 * image is built by devcontainer-build.ts and the sandbox layer applies the rest.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { type ParseError, parse, printParseErrorCode } from 'jsonc-parser';
import { notFoundError, usageError } from '../shared/errors.js';
import { isInside, readInside, realInside } from '../shared/workspace-file.js';
import { type ImageSource, loadComposeService } from './devcontainer-compose.js';
import { contentHash } from './template.js';

export interface DevcontainerFile {
  /** The devcontainer.json's absolute path. */
  path: string;
  /** Its raw text (hashed into the image tag). */
  text: string;
}

/** A file (or a folder, hashed whole) the dev container was read from, hashed as it was used. */
export interface DevcontainerInput {
  /** Absolute path (a folder ends with /). */
  path: string;
  hash: string;
  /** What it is, for the user who approves it. */
  role: string;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * A feature, installed in order with its options as variables: a local one (./folder with
 * install.sh), or one from a registry (`ref`), whose `dir` and `env` are known once it is fetched
 * (see features.ts; until then dir is '').
 */
export interface LocalFeature {
  id: string;
  dir: string;
  env: Record<string, string>;
  /** Its devcontainer-feature.json's containerEnv, set with ENV after it is installed. */
  containerEnv?: Record<string, string>;
  /** A registry feature: where it comes from, and its options as given (substituted). */
  ref?: FeatureRef;
  options?: Record<string, string>;
}

/** A feature in an OCI registry: ghcr.io/devcontainers/features/node:1 (tag "latest" when none). */
export interface FeatureRef {
  registry: string;
  repository: string;
  reference: string;
}

/**
 * A registry feature's id as a reference, or undefined when it is not one (its first part must be a
 * registry: a host with a dot or a port, or localhost).
 */
export function parseFeatureRef(id: string): FeatureRef | undefined {
  const m =
    /^([a-z0-9.-]+(?::\d+)?|\[::1\](?::\d+)?)\/([a-z0-9._/-]+?)(?::([\w][\w.-]{0,127})|@(sha256:[0-9a-f]{64}))?$/i.exec(
      id,
    );
  if (!m) return undefined;
  const registry = m[1]!;
  if (!/[.:]/.test(registry) && registry.toLowerCase() !== 'localhost') return undefined;
  return { registry, repository: m[2]!.toLowerCase(), reference: m[4] ?? m[3] ?? 'latest' };
}

/** A feature's options as its install.sh gets them: defaults, then the given ones, upper-cased names. */
export function featureEnv(dir: string, given: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...readFeatureDefaults(dir), ...given }))
    env[k.replace(/[^a-zA-Z0-9_]/g, '_').toUpperCase()] = String(v);
  return env;
}

export interface DevcontainerMount {
  type: 'bind' | 'volume';
  source: string;
  target: string;
  readOnly: boolean;
}

export interface Devcontainer {
  file: DevcontainerFile;
  /** Where the project image comes from. */
  source: ImageSource;
  features: LocalFeature[];
  /** The files it was read from besides the devcontainer.json (Dockerfile, compose files, local features). */
  inputs: DevcontainerInput[];
  /** containerEnv then remoteEnv, substituted. */
  env: Record<string, string>;
  /** onCreateCommand, updateContentCommand, postCreateCommand: run once at creation, in this order. */
  createCommands: string[][];
  /** postStartCommand: at each start. */
  startCommands: string[][];
  /** forwardPorts and appPort (container ports, published on 127.0.0.1 under the same number). */
  ports: number[];
  /** mounts: binds (checked like -v when the sandbox is made) and named volumes. */
  mounts: DevcontainerMount[];
  /** remoteUser and containerUser: the image's own users, whose home tool folders go on the agent's PATH. */
  imageUsers: string[];
  /** dockerComposeFile: its files and the services besides the sandbox's own to start (runServices, else all). */
  compose?: { files: string[]; services: string[] };
  /** Properties sbx does not apply, each with what it did instead and why. */
  notes: string[];
  /**
   * What the file asks for that would widen the sandbox's boundary (or bring the host in): warned
   * about by default, refused in strict mode (config devcontainer=strict).
   */
  widening: string[];
}

/** The devcontainer.json files sbx looks for, in order, relative to the workspace. */
const DEFAULT_PATHS = ['.devcontainer/devcontainer.json', '.devcontainer.json'];

/**
 * The workspace's devcontainer.json: `chosen` (--devcontainer, a path relative to the workspace or
 * absolute), else .devcontainer/devcontainer.json, else .devcontainer.json. Undefined when none.
 */
export function findDevcontainer(workspace: string, chosen?: string): DevcontainerFile | undefined {
  if (chosen !== undefined) {
    let path = isAbsolute(chosen) ? chosen : resolve(workspace, chosen);
    if (existsSync(path) && statSync(path).isDirectory()) path = join(path, 'devcontainer.json');
    if (!existsSync(path))
      throw notFoundError(
        `No dev container at ${path}.`,
        'Give a devcontainer.json (or its folder), e.g. --devcontainer .devcontainer/go/devcontainer.json.',
      );
    // One of the workspace's own files is read as any workspace file; one outside it is the user's.
    const inWorkspace = isInside(realpathSync(workspace), realpathSync(dirname(path)));
    const text = inWorkspace ? readInside(workspace, path, 'The dev container')! : readFileSync(path);
    return { path, text: text.toString('utf8') };
  }
  for (const rel of DEFAULT_PATHS) {
    const bytes = readInside(workspace, rel, 'The dev container');
    if (bytes) return { path: join(workspace, rel), text: bytes.toString('utf8') };
  }
  return undefined;
}

/** Line and column (1-based) of an offset in a text. */
function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

/** Parses JSONC (comments, trailing commas); a malformed file is a usage error naming line and column. */
export function parseJsonc(text: string, path: string): Record<string, unknown> {
  const errors: ParseError[] = [];
  const value: unknown = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  const first = errors[0];
  if (first) {
    const { line, column } = position(text, first.offset);
    throw usageError(
      `${path}:${line}:${column}: ${printParseErrorCode(first.error)} (the dev container is not valid JSON with comments); nothing was created.`,
      'Fix the file at that place, or run with --template NAME to ignore the dev container.',
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw usageError(
      `${path} does not hold a JSON object; nothing was created.`,
      'A devcontainer.json is { ... }.',
    );
  return value as Record<string, unknown>;
}

export interface SubstitutionContext {
  localEnv: Record<string, string | undefined>;
  localWorkspaceFolder: string;
  /** sbx mounts the workspace at the same path. */
  containerWorkspaceFolder: string;
}

/**
 * Replaces ${localEnv:VAR[:default]}, ${localWorkspaceFolder}, ${containerWorkspaceFolder} (and their
 * Basename forms) and ${containerEnv:VAR} (from `containerEnv`, when known). Unknown ones stay as written.
 */
export function substitute(
  value: string,
  ctx: SubstitutionContext,
  containerEnv: Record<string, string> = {},
): string {
  return value.replace(
    /\$\{([^}:]+)(?::([^}:]*))?(?::([^}]*))?\}/g,
    (whole, kind: string, name, fallback) => {
      switch (kind) {
        case 'localEnv':
        case 'env':
          return ctx.localEnv[name ?? ''] ?? fallback ?? '';
        case 'containerEnv':
          return containerEnv[name ?? ''] ?? fallback ?? whole;
        case 'localWorkspaceFolder':
          return ctx.localWorkspaceFolder;
        case 'containerWorkspaceFolder':
          return ctx.containerWorkspaceFolder;
        case 'localWorkspaceFolderBasename':
        case 'containerWorkspaceFolderBasename':
          return ctx.localWorkspaceFolder.split('/').filter(Boolean).pop() ?? '';
        default:
          return whole;
      }
    },
  );
}

/**
 * Properties sbx ignores on purpose, with the reason shown to the user. Anything not here and not
 * honoured is named as unknown.
 */
export const IGNORED: Readonly<Record<string, string>> = {
  name: '',
  $schema: '',
  customizations: '',
  remoteUser:
    "the agent runs as sbx's agent user, with the workspace owner's UID/GID, so files it writes belong to you; the tool folders of this user's home that it can read are on its PATH",
  containerUser:
    "the agent runs as sbx's agent user, with the workspace owner's UID/GID, so files it writes belong to you; the tool folders of this user's home that it can read are on its PATH",
  updateRemoteUserUID: "sbx always gives the agent user the workspace owner's UID",
  workspaceFolder: 'sbx mounts the workspace at the same path as on the host',
  workspaceMount: 'sbx mounts the workspace at the same path as on the host',
  shutdownAction: 'sbx stop and sbx rm decide',
  overrideCommand: "sbx's own init (sbx-init, tini) is the container's command",
  init: 'sbx always runs tini as the init',
  hostRequirements: 'not checked; use --cpus and --memory',
  portsAttributes: '',
  otherPortsAttributes: '',
  waitFor: '',
  userEnvProbe: '',
  initializeCommand: 'sbx does not run commands from the project on the host',
  postAttachCommand: 'not run; use postStartCommand',
  runArgs: 'not applied: they could widen the sandbox boundary; use sbx flags (-p, -v, --cpus, --memory)',
  privileged: 'not applied: a privileged container would have no boundary',
  capAdd: 'not applied: extra capabilities would widen the sandbox boundary',
  securityOpt: 'not applied: it would weaken the sandbox boundary',
};

const HONOURED = new Set([
  'image',
  'build',
  'dockerFile',
  'context',
  'features',
  'containerEnv',
  'remoteEnv',
  'onCreateCommand',
  'updateContentCommand',
  'postCreateCommand',
  'postStartCommand',
  'forwardPorts',
  'appPort',
  'mounts',
  'dockerComposeFile',
  'service',
  'runServices',
]);

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A lifecycle command as devcontainer.json allows it: a string (run by a shell), an array (run as
 * is), or an object of named commands (each run, in order).
 */
function commands(value: unknown, key: string, path: string): string[][] {
  if (value === undefined) return [];
  if (typeof value === 'string') return value.trim() ? [['/bin/sh', '-c', value]] : [];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string'))
    return value.length > 0 ? [value as string[]] : [];
  if (isRecord(value)) return Object.values(value).flatMap((v) => commands(v, key, path));
  throw usageError(`${path}: ${key} is not a command (a string, an array of strings, or an object of them).`);
}

function stringMap(value: unknown, key: string, path: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw usageError(`${path}: ${key} is not an object of strings.`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
      throw usageError(`${path}: ${key}.${k} is not a string.`);
    out[k] = String(v);
  }
  return out;
}

function ports(value: unknown, key: string, path: string): number[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((p) => {
    const n = typeof p === 'number' ? p : typeof p === 'string' && /^\d+$/.test(p) ? Number(p) : Number.NaN;
    if (!(Number.isInteger(n) && n >= 1 && n <= 65535))
      throw usageError(
        `${path}: ${key} has ${JSON.stringify(p)}, which sbx cannot publish.`,
        'Give port numbers (1-65535); host:port forms are not supported.',
      );
    return n;
  });
}

/** runArgs flags that would widen the boundary (with a value: only the values listed, if any). */
const WIDENING_RUN_ARGS: Readonly<Record<string, readonly string[] | true>> = {
  '--privileged': true,
  '--cap-add': true,
  '--security-opt': true,
  '--device': true,
  '--device-cgroup-rule': true,
  '--volume': true,
  '-v': true,
  '--mount': true,
  '--volumes-from': true,
  '--publish': true,
  '-p': true,
  '--publish-all': true,
  '-P': true,
  '--network': ['host'],
  '--net': ['host'],
  '--pid': ['host'],
  '--ipc': ['host'],
  '--uts': ['host'],
  '--userns': ['host'],
  '--cgroupns': ['host'],
  '--runtime': true,
};
const RUN_ARG_FLAGS_WITHOUT_VALUE = new Set(['--privileged', '--publish-all', '-P']);

/** The runArgs (as given) that would widen the boundary: --privileged, host namespaces, binds… */
export function wideningRunArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const rule = WIDENING_RUN_ARGS[flag];
    if (rule === undefined) continue;
    let value = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (value === undefined && !RUN_ARG_FLAGS_WITHOUT_VALUE.has(flag) && i + 1 < args.length)
      value = args[++i];
    // A boolean flag turned off (--privileged=false) asks for nothing.
    if (RUN_ARG_FLAGS_WITHOUT_VALUE.has(flag) && value === 'false') continue;
    if (rule === true || (value !== undefined && rule.includes(value)))
      out.push(value === undefined || eq > 0 ? arg : `${arg} ${value}`);
  }
  return out;
}

/**
 * Strict mode (config devcontainer=strict): a dev container that asks for more than the sandbox
 * gives is refused, listing what, instead of being built without it.
 */
export function refuseWidening(dc: Devcontainer): void {
  if (dc.widening.length === 0) return;
  throw usageError(
    `${dc.file.path} asks for what would widen the sandbox's boundary, which strict mode (config devcontainer=strict) refuses; nothing was created:\n${dc.widening.map((w) => `  - ${w}`).join('\n')}`,
    'Remove these from the devcontainer.json (use sbx flags such as -p, -v, --cpus, --memory instead), or run `sbx config set devcontainer auto` to build without them and be warned.',
  );
}

/** Reads a devcontainer.json into what sbx does with it (see Devcontainer). */
export function loadDevcontainer(file: DevcontainerFile, ctx: SubstitutionContext): Devcontainer {
  const { path } = file;
  const json = parseJsonc(file.text, path);
  const dir = dirname(path);
  const notes: string[] = [];
  const sub = (v: string) => substitute(v, ctx);
  const subMap = (m: Record<string, string>, env: Record<string, string> = {}) =>
    Object.fromEntries(Object.entries(m).map(([k, v]) => [k, substitute(v, ctx, env)]));

  const workspace = ctx.localWorkspaceFolder;
  const inputs: DevcontainerInput[] = [];
  const compose =
    json.dockerComposeFile !== undefined
      ? loadComposeService(
          path,
          json.dockerComposeFile,
          json.service,
          json.runServices,
          ctx.localEnv,
          workspace,
        )
      : undefined;
  if (compose) inputs.push(...compose.inputs);
  let source: Devcontainer['source'];
  const build = isRecord(json.build) ? json.build : undefined;
  const dockerfile = build?.dockerfile ?? build?.dockerFile ?? json.dockerFile;
  if (compose) {
    source = compose.source;
  } else if (typeof dockerfile === 'string') {
    const given = resolve(dir, sub(String(build?.context ?? json.context ?? '.')));
    const file = resolve(dir, sub(dockerfile));
    // Both stay in the workspace, symlinks resolved: a build reads no host file from outside it.
    const dockerfileText = readInside(workspace, file, `${path}: its Dockerfile`);
    if (!dockerfileText)
      throw notFoundError(`${path}: its Dockerfile ${file} does not exist; nothing was created.`);
    const context = realInside(workspace, given, `${path}: its build context`);
    if (!context || !statSync(context).isDirectory())
      throw notFoundError(`${path}: its build context ${given} is not a folder; nothing was created.`);
    inputs.push(
      { path: file, hash: sha256(dockerfileText), role: "the Dockerfile of the dev container's image" },
      ...dockerignoreInput(workspace, context),
    );
    const target = build?.target;
    source = {
      kind: 'build',
      dockerfile: file,
      dockerfileText,
      context,
      args: subMap(stringMap(build?.args, 'build.args', path)),
      ...(typeof target === 'string' ? { target } : {}),
    };
  } else if (typeof json.image === 'string') {
    source = { kind: 'image', ref: sub(json.image) };
  } else {
    throw usageError(
      `${path} names neither an image nor a build.dockerfile; nothing was created.`,
      'Add "image": "..." or "build": { "dockerfile": "Dockerfile" }.',
    );
  }

  const features: LocalFeature[] = [];
  if (json.features !== undefined) {
    if (!isRecord(json.features)) throw usageError(`${path}: features is not an object.`);
    for (const [id, options] of Object.entries(json.features)) {
      const given = Object.fromEntries(
        Object.entries(
          isRecord(options) ? options : typeof options === 'string' ? { version: options } : {},
        ).map(([k, v]) => [k, sub(String(v))]),
      );
      if (!id.startsWith('./') && !id.startsWith('../')) {
        const ref = parseFeatureRef(id);
        if (!ref)
          throw usageError(
            `${path}: the feature ${id} is neither a local folder (./name) nor a registry reference (registry/path:tag); nothing was created.`,
            'Name a registry feature in full, e.g. ghcr.io/devcontainers/features/node:1, or vendor it as a local folder next to the devcontainer.json and name it "./folder".',
          );
        features.push({ id, dir: '', env: {}, ref, options: given });
        continue;
      }
      const fdir = realInside(workspace, resolve(dir, id), `${path}: the feature ${id}`);
      if (!fdir || !existsSync(join(fdir, 'install.sh')))
        throw notFoundError(
          `${path}: the feature ${id} has no install.sh (${resolve(dir, id)}); nothing was created.`,
        );
      inputs.push({
        path: `${fdir}/`,
        hash: contentHash(fdir, [], []),
        role: `the local feature ${id} (its install.sh runs as root in the image's build)`,
      });
      const env = featureEnv(fdir, given);
      const containerEnv = featureContainerEnv(fdir);
      features.push({
        id,
        dir: fdir,
        env,
        ...(Object.keys(containerEnv).length > 0 ? { containerEnv } : {}),
      });
    }
  }

  const mounts: DevcontainerMount[] = [];
  if (json.mounts !== undefined && !Array.isArray(json.mounts))
    throw usageError(`${path}: mounts is not a list.`);
  for (const raw of (json.mounts as unknown[] | undefined) ?? []) {
    const fields: Record<string, string> = {};
    if (typeof raw === 'string') {
      for (const part of raw.split(',')) {
        const eq = part.indexOf('=');
        fields[(eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase()] =
          eq < 0 ? 'true' : part.slice(eq + 1).trim();
      }
    } else if (isRecord(raw)) {
      for (const [k, v] of Object.entries(raw)) fields[k.toLowerCase()] = String(v);
    } else throw usageError(`${path}: mounts has ${JSON.stringify(raw)}, which is not a mount.`);
    const source = sub(fields.source ?? fields.src ?? '');
    const target = sub(fields.target ?? fields.destination ?? fields.dst ?? '');
    const type = fields.type ?? 'volume';
    const readOnly = ['readonly', 'ro'].some((k) => fields[k] !== undefined && fields[k] !== 'false');
    if ((type !== 'bind' && type !== 'volume') || !source || !target) {
      notes.push(
        `mounts: ${JSON.stringify(raw)} not applied (sbx applies bind and named volume mounts with a source and a target)`,
      );
      continue;
    }
    mounts.push({ type, source, target, readOnly });
  }

  const containerEnv = subMap(stringMap(json.containerEnv, 'containerEnv', path));
  const remoteEnv = subMap(stringMap(json.remoteEnv, 'remoteEnv', path), containerEnv);

  const widening: string[] = [...(compose?.widening ?? [])];
  notes.push(...(compose?.notes ?? []));
  if (Array.isArray(json.runArgs)) {
    const wide = wideningRunArgs(json.runArgs.map(String));
    if (wide.length > 0) widening.push(`runArgs ${JSON.stringify(wide)}`);
  }
  if (json.privileged === true) widening.push('privileged: true');
  for (const key of ['capAdd', 'securityOpt'])
    if (Array.isArray(json[key]) ? (json[key] as unknown[]).length > 0 : json[key] !== undefined)
      widening.push(`${key} ${JSON.stringify(json[key])}`);
  if (json.initializeCommand !== undefined)
    widening.push('initializeCommand (a command from the project for the host)');

  for (const key of Object.keys(json)) {
    if (HONOURED.has(key)) continue;
    const why = IGNORED[key];
    if (why === '') continue;
    const shown = ['runArgs', 'privileged', 'capAdd', 'securityOpt'].includes(key)
      ? ` ${JSON.stringify(json[key])}`
      : '';
    if (why !== undefined) notes.push(`${key}${shown}: ${why}`);
    else notes.push(`${key}: unknown to sbx, ignored`);
  }
  // A cloned project's file decides these: say what of the host it brings into the sandbox.
  const hostVars = [...new Set([...file.text.matchAll(/\$\{(?:localEnv|env):([^}:]+)/g)].map((m) => m[1]!))];
  if (hostVars.length > 0) {
    notes.push(`localEnv: passes the host's ${hostVars.join(', ')} into the sandbox`);
    widening.push(`\${localEnv:…}: reads the host's ${hostVars.join(', ')}`);
  }
  for (const m of mounts)
    if (
      m.type === 'bind' &&
      !`${resolve(dirname(path), m.source)}/`.startsWith(`${ctx.localWorkspaceFolder}/`)
    ) {
      notes.push(`mounts: binds ${m.source}, outside the workspace, into the sandbox at ${m.target}`);
      widening.push(`mounts: binds ${m.source}, outside the workspace`);
    }
  if (!compose && (json.service !== undefined || json.runServices !== undefined))
    notes.push('service/runServices: ignored without dockerComposeFile');

  return {
    file,
    source,
    features,
    inputs,
    env: { ...compose?.env, ...containerEnv, ...remoteEnv },
    createCommands: [
      ...commands(json.onCreateCommand, 'onCreateCommand', path),
      ...commands(json.updateContentCommand, 'updateContentCommand', path),
      ...commands(json.postCreateCommand, 'postCreateCommand', path),
    ],
    startCommands: commands(json.postStartCommand, 'postStartCommand', path),
    mounts,
    ports: [
      ...new Set([
        ...ports(json.forwardPorts, 'forwardPorts', path),
        ...ports(json.appPort, 'appPort', path),
      ]),
    ],
    imageUsers: [json.remoteUser, json.containerUser]
      .filter((u): u is string => typeof u === 'string')
      .map(sub),
    ...(compose && compose.others.length > 0
      ? { compose: { files: compose.files, services: compose.others } }
      : {}),
    notes,
    widening,
  };
}

/** The context's .dockerignore, which decides what of the workspace the build is sent. */
function dockerignoreInput(workspace: string, context: string): DevcontainerInput[] {
  const file = join(context, '.dockerignore');
  const bytes = readInside(workspace, file, 'The build context .dockerignore');
  return bytes
    ? [{ path: file, hash: sha256(bytes), role: 'what of the build context is sent to the build' }]
    : [];
}

/**
 * What the dev container asks for, one line each, for the user who approves it: where its image comes
 * from, what it adds to the sandbox (mounts, ports, variables, services), what it runs, and what of it
 * would widen the boundary.
 */
export function devcontainerShows(dc: Devcontainer): string[] {
  const src = dc.source;
  return [
    ...dc.widening.map((w) => `WIDENS: ${w}`),
    src.kind === 'image'
      ? `image: ${src.ref}`
      : `builds ${src.dockerfile} with the context ${src.context}${Object.keys(src.args).length ? ` (args ${Object.keys(src.args).join(', ')})` : ''}`,
    ...dc.features.map((f) => `feature: ${f.id}${f.ref ? ' (fetched from its registry by the host)' : ''}`),
    ...dc.mounts.map(
      (m) =>
        `mounts ${m.type === 'bind' ? 'the host folder' : 'the volume'} ${m.source} at ${m.target}${m.readOnly ? ' (read-only)' : ''}`,
    ),
    ...(dc.ports.length ? [`publishes ports on 127.0.0.1: ${dc.ports.join(', ')}`] : []),
    ...(Object.keys(dc.env).length ? [`sets variables: ${Object.keys(dc.env).join(', ')}`] : []),
    ...(dc.compose ? [`compose services (in a --docker sandbox): ${dc.compose.services.join(', ')}`] : []),
    ...[...dc.createCommands, ...dc.startCommands].map((c) => `runs in the sandbox: ${c.join(' ')}`),
  ];
}

/**
 * The variables a feature's devcontainer-feature.json sets in the image (`containerEnv`, e.g. the
 * node feature's PATH=/usr/local/share/nvm/current/bin:${PATH}), given to ENV after its install.sh.
 */
export function featureContainerEnv(dir: string): Record<string, string> {
  const file = join(dir, 'devcontainer-feature.json');
  if (!existsSync(file)) return {};
  const json = parseJsonc(readFileSync(file, 'utf8'), file);
  const env = isRecord(json.containerEnv) ? json.containerEnv : {};
  return Object.fromEntries(
    Object.entries(env)
      .filter(([k, v]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && typeof v === 'string')
      .map(([k, v]) => [k, v as string]),
  );
}

/** A local feature's option defaults, from its devcontainer-feature.json when it has one. */
function readFeatureDefaults(dir: string): Record<string, unknown> {
  const file = join(dir, 'devcontainer-feature.json');
  if (!existsSync(file)) return {};
  const json = parseJsonc(readFileSync(file, 'utf8'), file);
  const options = isRecord(json.options) ? json.options : {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (isRecord(v) && 'default' in v) out[k] = v.default;
  return out;
}

/** A short name for the dev container's image repository: the workspace's folder name, cleaned. */
export function devcontainerRepository(workspace: string, file: DevcontainerFile): string {
  const base = (workspace.split('/').filter(Boolean).pop() ?? 'workspace')
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-');
  const which = relative(workspace, dirname(file.path))
    .replace(/^\.devcontainer\/?/, '')
    .replace(/[^a-zA-Z0-9._-]/g, '-')
    .toLowerCase();
  return `sbx/devcontainer-${base}${which ? `-${which}` : ''}`;
}
