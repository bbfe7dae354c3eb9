/**
 * A dev container on Docker Compose (dockerComposeFile + service): sbx builds the named service's
 * image (its build, or its image) and takes its environment; the service's other settings are named
 * as not applied. The other services (runServices, else all) start in the sandbox's own Docker
 * engine when it has one (--docker; see sandbox/devcontainer.ts), and are named as not started when
 * it has none.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { notFoundError, usageError } from '../shared/errors.js';
import { readInside, realInside } from '../shared/workspace-file.js';

/** The YAML parser (72 files), loaded only for a compose file: every creation imports this module. */
const yaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml') as typeof import('yaml');

/** Where a project image comes from: an image, or a build of a Dockerfile read (and approved) once. */
export type ImageSource =
  | { kind: 'image'; ref: string }
  | {
      kind: 'build';
      dockerfile: string;
      /** The Dockerfile's bytes as read (and approved): the build sends these, never the file again. */
      dockerfileText: Buffer;
      /** The context's real path, inside the workspace. */
      context: string;
      args: Record<string, string>;
      target?: string;
    };

export interface ComposeService {
  source: ImageSource;
  /** The compose files and the service's Dockerfile, hashed as read. */
  inputs: Array<{ path: string; hash: string; role: string }>;
  /** The service's environment (compose's map or KEY=VALUE list). */
  env: Record<string, string>;
  notes: string[];
  /** The service's settings that would widen the boundary (see strict mode). */
  widening: string[];
  /** The compose files (absolute paths, in order) and the other services to start (runServices, else all). */
  files: string[];
  others: string[];
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Compose's map-or-list form (environment, build.args) as a map; a bare KEY in a list takes the host's value. */
function mapOrList(
  value: unknown,
  where: string,
  hostEnv: Record<string, string | undefined>,
): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (Array.isArray(value))
    return Object.fromEntries(
      value.map((item) => {
        const text = String(item);
        const eq = text.indexOf('=');
        return eq < 0 ? [text, hostEnv[text] ?? ''] : [text.slice(0, eq), text.slice(eq + 1)];
      }),
    );
  if (isRecord(value))
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, v === null ? (hostEnv[k] ?? '') : String(v)]),
    );
  throw usageError(`${where} is neither a map nor a list.`);
}

/** Compose's ${VAR}, ${VAR:-default} and ${VAR-default} from the host's environment; $$ is a dollar. */
function interpolate(text: string, hostEnv: Record<string, string | undefined>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g,
    (whole, name, op, fallback) => {
      if (whole === '$$') return '$';
      const value = hostEnv[name as string];
      if (op === ':-') return value ? value : (fallback ?? '');
      if (op === '-') return value ?? fallback ?? '';
      return value ?? '';
    },
  );
}

/** What in a compose service would widen the boundary, named like compose names it. */
function wideningOf(svc: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (svc.privileged === true) out.push('privileged: true');
  for (const key of ['cap_add', 'security_opt', 'devices'])
    if (Array.isArray(svc[key]) && (svc[key] as unknown[]).length > 0)
      out.push(`${key} ${JSON.stringify(svc[key])}`);
  for (const key of ['network_mode', 'pid', 'ipc', 'userns_mode'])
    if (svc[key] === 'host') out.push(`${key}: host`);
  return out;
}

/** Compose keys sbx takes from the service; the rest are named as not applied. */
const TAKEN = new Set([
  'build',
  'image',
  'environment',
  'container_name',
  'command',
  'entrypoint',
  'user',
  'working_dir',
]);

/**
 * The named service of the dev container's compose files (merged in order, a later file's service
 * keys winning), reduced to what sbx builds it from.
 */
export function loadComposeService(
  devcontainerPath: string,
  files: unknown,
  service: unknown,
  runServices: unknown,
  hostEnv: Record<string, string | undefined>,
  workspace: string,
): ComposeService {
  const where = devcontainerPath;
  const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
  const inputs: ComposeService['inputs'] = [];
  const list = typeof files === 'string' ? [files] : Array.isArray(files) ? files.map(String) : undefined;
  if (!list || list.length === 0)
    throw usageError(`${where}: dockerComposeFile is neither a file nor a list of files.`);
  if (typeof service !== 'string' || !service)
    throw usageError(
      `${where}: dockerComposeFile needs "service", the service sbx builds the sandbox from; nothing was created.`,
      'Add "service": "NAME" (one of the services of the compose file).',
    );
  const services: Record<string, Record<string, unknown>> = {};
  let serviceDir = '';
  const paths = list.map((rel) => resolve(dirname(devcontainerPath), rel));
  for (const file of paths) {
    const bytes = readInside(workspace, file, `${where}: its compose file`);
    if (!bytes)
      throw notFoundError(`${where}: its compose file ${file} does not exist; nothing was created.`);
    inputs.push({ path: file, hash: sha256(bytes), role: "a compose file of the dev container's services" });
    let doc: unknown;
    try {
      doc = yaml().parse(bytes.toString('utf8'));
    } catch (err) {
      throw usageError(`${file} is not valid YAML: ${(err as Error).message}; nothing was created.`);
    }
    const found = isRecord(doc) && isRecord(doc.services) ? doc.services : {};
    for (const [name, svc] of Object.entries(found)) {
      if (!isRecord(svc)) continue;
      services[name] = { ...services[name], ...svc };
      if (name === service && (svc.build !== undefined || !serviceDir)) serviceDir = dirname(file);
    }
  }
  const svc = services[service];
  if (!svc)
    throw usageError(
      `${where}: the compose files have no service "${service}"; nothing was created.`,
      `Its services: ${Object.keys(services).join(', ') || 'none'}.`,
    );

  let source: ComposeService['source'];
  const build =
    typeof svc.build === 'string' ? { context: svc.build } : isRecord(svc.build) ? svc.build : undefined;
  if (build) {
    const given = resolve(serviceDir, interpolate(String(build.context ?? '.'), hostEnv));
    const context = realInside(workspace, given, `${where}: the build context of the service ${service}`);
    if (!context || !statSync(context).isDirectory())
      throw notFoundError(
        `${where}: the build context ${given} of the service ${service} is not a folder; nothing was created.`,
      );
    const dockerfile = resolve(context, interpolate(String(build.dockerfile ?? 'Dockerfile'), hostEnv));
    const dockerfileText = readInside(
      workspace,
      dockerfile,
      `${where}: the Dockerfile of the service ${service}`,
    );
    if (!dockerfileText)
      throw notFoundError(
        `${where}: the Dockerfile ${dockerfile} of the service ${service} does not exist; nothing was created.`,
      );
    inputs.push({
      path: dockerfile,
      hash: sha256(dockerfileText),
      role: `the Dockerfile of the service ${service}`,
    });
    const args = Object.fromEntries(
      Object.entries(mapOrList(build.args, `${service}.build.args`, hostEnv)).map(([k, v]) => [
        k,
        interpolate(v, hostEnv),
      ]),
    );
    source = {
      kind: 'build',
      dockerfile,
      dockerfileText,
      context,
      args,
      ...(typeof build.target === 'string' ? { target: build.target } : {}),
    };
  } else if (typeof svc.image === 'string') {
    source = { kind: 'image', ref: interpolate(svc.image, hostEnv) };
  } else {
    throw usageError(`${where}: the service ${service} has neither build nor image; nothing was created.`);
  }

  const env = Object.fromEntries(
    Object.entries(mapOrList(svc.environment, `${service}.environment`, hostEnv)).map(([k, v]) => [
      k,
      interpolate(v, hostEnv),
    ]),
  );
  const notes: string[] = [];
  if (
    runServices !== undefined &&
    !(Array.isArray(runServices) && runServices.every((r) => typeof r === 'string'))
  )
    throw usageError(`${where}: runServices is not a list of service names; nothing was created.`);
  const unknown = ((runServices as string[] | undefined) ?? []).filter((n) => !services[n]);
  if (unknown.length > 0)
    throw usageError(
      `${where}: runServices names ${unknown.join(', ')}, which the compose files do not have; nothing was created.`,
      `Their services: ${Object.keys(services).join(', ')}.`,
    );
  const others = ((runServices as string[] | undefined) ?? Object.keys(services)).filter(
    (n) => n !== service,
  );
  const ignored = Object.keys(svc).filter((k) => !TAKEN.has(k));
  if (ignored.length > 0)
    notes.push(
      `service ${service}: ${ignored.join(', ')} not applied (sbx applies only its build or image and environment; use forwardPorts, mounts and sbx's flags)`,
    );
  // The other services run inside the sandbox's own engine, within its boundary: only the sandbox's
  // own service can widen it.
  const widening = wideningOf(svc).map((w) => `service ${service}: ${w}`);
  return { source, inputs, env, notes, widening, files: paths, others };
}
