/**
 * Sandboxes built from the workspace's dev container: which devcontainer.json applies, its image
 * (see templates/devcontainer-build.ts), what it adds to the container, and its lifecycle commands.
 */
import { dirname } from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import type { AgentSpec } from '../agents/registry.js';
import { cacheDir, type SbxConfig } from '../config/config.js';
import { extraCaCerts, proxyEnv } from '../config/tls-proxy.js';
import { execAttached, execCapture } from '../engine/exec.js';
import { SbxError, usageError } from '../shared/errors.js';
import { extraLabels, LABEL } from '../shared/labels.js';
import { type PortMapping, parseVolume, type VolumeMount } from '../shared/parse.js';
import type { EnsureOptions, ImageReporter } from '../templates/build.js';
import {
  type Devcontainer,
  findDevcontainer,
  loadDevcontainer,
  refuseWidening,
} from '../templates/devcontainer.js';
import { ensureDevcontainerImage } from '../templates/devcontainer-build.js';
import { fetchFeatures } from '../templates/features.js';
import type { Addition } from './spec.js';
import { execUser } from './spec.js';

/**
 * The dev container a new sandbox is built from: none when --template is given or config
 * devcontainer is never; --devcontainer PATH chooses one; else the workspace's default one, if any.
 */
export function devcontainerFor(
  req: { workspace: string; template: string | undefined; devcontainer?: string | undefined },
  config: SbxConfig,
): Devcontainer | undefined {
  if (req.devcontainer !== undefined && req.template !== undefined)
    throw usageError(
      '--devcontainer and --template both choose the image of the new sandbox.',
      'Give one of them.',
    );
  if (req.template !== undefined) return undefined;
  if (config.devcontainer === 'never' && req.devcontainer === undefined) return undefined;
  const file = findDevcontainer(req.workspace, req.devcontainer);
  if (!file) return undefined;
  const dc = loadDevcontainer(file, {
    localEnv: process.env,
    localWorkspaceFolder: req.workspace,
    containerWorkspaceFolder: req.workspace,
  });
  if (config.devcontainer === 'strict') refuseWidening(dc);
  return dc;
}

export async function ensureDevcontainer(
  dc: Devcontainer,
  workspace: string,
  agent: AgentSpec,
  config: SbxConfig,
  options: { nocache: boolean; reporter: ImageReporter; buildNetwork?: EnsureOptions['buildNetwork'] },
) {
  const caCerts = extraCaCerts(config.caCerts);
  const fetched = await fetchFeatures(dc, { cacheDir: cacheDir(), caCerts: caCerts.map((c) => c.pem) });
  return ensureDevcontainerImage(fetched, workspace, agent, {
    caCerts,
    labels: extraLabels(),
    buildargs: proxyEnv(),
    ...options,
  });
}

/**
 * What the dev container's image lacks (sbx could install nothing there: no package manager), said
 * when a sandbox is made from it, with what that means.
 */
export function missingToolsWarning(labels: Record<string, string> | undefined): string[] {
  const missing = (labels?.[LABEL.missing] ?? '').split(',').filter(Boolean);
  if (missing.length === 0) return [];
  const effects: Record<string, string> = {
    sudo: 'nothing runs as root but through `sbx exec -u root`',
    tmux: '`sbx run -d` cannot run an agent in the background',
    git: 'git is not there, nor the git identity sbx sets',
    npm: 'agents installed with npm cannot be used',
  };
  const said = missing.filter((m) => effects[m]).map((m) => effects[m]);
  return [
    `dev container: its image has no package manager, so sbx added only what it brings itself (tini, bash where the image has none); it lacks ${missing.join(', ')}${said.length > 0 ? `: ${said.join('; ')}` : ''}.`,
  ];
}

/** The dev container's bind mounts, checked like -v (the host path must exist). */
export const devcontainerBinds = (dc: Devcontainer): VolumeMount[] =>
  dc.mounts
    .filter((m) => m.type === 'bind')
    .map((m) => parseVolume(`${m.source}:${m.target}${m.readOnly ? ':ro' : ''}`, dirname(dc.file.path)));

/**
 * What the dev container adds to the container: its variables and labels; its ports, merged with -p.
 * In a sandbox with its own engine (`docker`), its other compose services are recorded to start there.
 */
export function devcontainerAddition(
  dc: Devcontainer,
  ports: PortMapping[],
  docker: boolean,
): { addition: Addition; ports: PortMapping[] } {
  const published = new Set(ports.map((p) => `${p.containerPort}/${p.protocol}`));
  return {
    addition: {
      env: Object.entries(dc.env).map(([k, v]) => `${k}=${v}`),
      mounts: dc.mounts
        .filter((m) => m.type === 'volume')
        .map((m) => ({ Type: 'volume' as const, Source: m.source, Target: m.target, ReadOnly: m.readOnly })),
      labels: {
        [LABEL.devcontainer]: dc.file.path,
        ...(dc.startCommands.length > 0 ? { [LABEL.postStart]: JSON.stringify(dc.startCommands) } : {}),
        ...(docker && dc.compose ? { [LABEL.composeServices]: JSON.stringify(dc.compose) } : {}),
      },
    },
    ports: [
      ...ports,
      ...dc.ports
        .filter((p) => !published.has(`${p}/tcp`))
        .map((p) => ({ hostIp: '127.0.0.1', hostPort: p, containerPort: p, protocol: 'tcp' as const })),
    ],
  };
}

/** Said of a dev container's compose services in a sandbox that has no engine of its own to run them. */
export const composeNote = (dc: Devcontainer, docker: boolean): string[] =>
  dc.compose && !docker
    ? [
        `dockerComposeFile: the other services (${dc.compose.services.join(', ')}) are not started: this sandbox has no Docker engine of its own (make it with --docker and they start there)`,
      ]
    : [];

/**
 * The dev container's other compose services, started (or built) in a --docker sandbox's own engine,
 * at each start of the sandbox, before its postStartCommand. They share the sandbox's network
 * namespace (network_mode: host of the inner engine: what `network_mode: service:…` gives a dev
 * container under Compose), so they answer on the sandbox's localhost, their names resolve to it,
 * and their own traffic leaves through the sandbox's egress proxy like everything else in it.
 */
export async function startComposeServices(
  sandbox: { id: string; name: string; workspace: string; uid: number; gid: number },
  compose: { files: string[]; services: string[] },
  output: Writable | undefined,
): Promise<void> {
  const names = compose.services.join(' ');
  const hosts = await execCapture(sandbox.id, [
    'sh',
    '-c',
    `grep -q ' sbx-compose$' /etc/hosts || echo "127.0.0.1 ${names} # sbx-compose" >> /etc/hosts`,
  ]);
  if (hosts.code !== 0)
    throw new SbxError(
      'internal',
      `Could not name the dev container's services in ${sandbox.name}'s /etc/hosts: ${hosts.stderr.trim()}`,
    );
  const override = [
    'services:',
    ...compose.services.flatMap((n) => [
      `  ${JSON.stringify(n)}:`,
      '    network_mode: host',
      '    networks: !reset {}',
      '    ports: !reset []',
    ]),
    '',
  ].join('\n');
  const project = sandbox.name.toLowerCase().replace(/[^a-z0-9_-]/g, '-');
  const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const script = [
    'set -e',
    'override=$(mktemp)',
    `trap 'rm -f "$override"' EXIT`,
    `printf '%s' ${quote(override)} > "$override"`,
    `docker compose -p ${quote(project)} ${compose.files.map((f) => `-f ${quote(f)}`).join(' ')} -f "$override" up -d ${compose.services.map(quote).join(' ')}`,
  ].join('\n');
  await runLifecycle(sandbox, 'services', [['/bin/sh', '-c', script]], output, {
    command: `docker compose up -d ${names}`,
    hint: `Its output is above; look with \`sbx exec ${sandbox.name} -- docker compose -p ${project} ps -a\` (or \`logs\`). The services start again with the sandbox: \`sbx stop ${sandbox.name}\`, then \`sbx run\` retries.`,
  });
}

const PHASES = {
  postCreateCommand: 'create commands (onCreateCommand/updateContentCommand/postCreateCommand)',
  postStartCommand: 'postStartCommand',
  services: "compose services (docker compose up, in the sandbox's own engine)",
};

/**
 * Runs lifecycle commands in a sandbox, as the agent user in the workspace, their output to `output`.
 * A failure is an error that leaves the sandbox as it is, for inspection, and says how to retry.
 */
export async function runLifecycle(
  sandbox: { id: string; name: string; workspace: string; uid: number; gid: number },
  phase: keyof typeof PHASES,
  commands: string[][],
  output: Writable | undefined,
  /** How the error names the command and the way to retry it, when the command itself says little. */
  said?: { command: string; hint: string },
): Promise<void> {
  const user = execUser(sandbox.uid, sandbox.gid);
  for (const cmd of commands) {
    const sink = output ?? new PassThrough().resume();
    const code = await execAttached({
      containerId: sandbox.id,
      cmd: ['/usr/local/bin/sbx-exec', ...cmd],
      user: user.user,
      env: [`HOME=${user.home}`, `USER=${user.name}`],
      workdir: sandbox.workspace,
      tty: false,
      stdout: sink,
      stderr: sink,
    });
    if (code !== 0) {
      const shown = said?.command ?? (cmd[0] === '/bin/sh' && cmd[1] === '-c' ? cmd[2]! : cmd.join(' '));
      const retry = `sbx exec ${sandbox.name} -- ${cmd.map((c) => (/^[\w./=:-]+$/.test(c) ? c : `'${c.replace(/'/g, `'\\''`)}'`)).join(' ')}`;
      throw new SbxError(
        'buildFailed',
        `The dev container's ${PHASES[phase]} failed in ${sandbox.name}: \`${shown}\` exited with ${code}. The sandbox is kept as it is, for you to look into.`,
        {
          hint:
            said?.hint ??
            `Look with \`sbx shell ${sandbox.name}\`, retry with \`${retry}\`, or remove it with \`sbx rm -f ${sandbox.name}\` (workspace files stay) and run sbx again to recreate it.`,
        },
      );
    }
  }
}
