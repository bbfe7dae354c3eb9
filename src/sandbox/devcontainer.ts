/**
 * Sandboxes built from the workspace's dev container: which devcontainer.json applies, its image
 * (see templates/devcontainer-build.ts), what it adds to the container, and its lifecycle commands.
 */
import { dirname } from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import type { AgentSpec } from '../agents/registry.js';
import { cacheDir, type SbxConfig } from '../config/config.js';
import { extraCaCerts, proxyEnv } from '../config/tls-proxy.js';
import { execAttached } from '../engine/exec.js';
import { SbxError, usageError } from '../shared/errors.js';
import { extraLabels, LABEL } from '../shared/labels.js';
import { type PortMapping, parseVolume, type VolumeMount } from '../shared/parse.js';
import type { ImageReporter } from '../templates/build.js';
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
  options: { nocache: boolean; reporter: ImageReporter },
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

/** What the dev container adds to the container: its variables and labels; its ports, merged with -p. */
export function devcontainerAddition(
  dc: Devcontainer,
  ports: PortMapping[],
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

/**
 * Runs lifecycle commands in a sandbox, as the agent user in the workspace, their output to `output`.
 * A failure is an error that leaves the sandbox as it is, for inspection, and says how to retry.
 */
export async function runLifecycle(
  sandbox: { id: string; name: string; workspace: string; uid: number; gid: number },
  phase: 'postCreateCommand' | 'postStartCommand',
  commands: string[][],
  output: Writable | undefined,
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
      const shown = cmd[0] === '/bin/sh' && cmd[1] === '-c' ? cmd[2]! : cmd.join(' ');
      throw new SbxError(
        'buildFailed',
        `The dev container's ${phase === 'postCreateCommand' ? 'create commands (onCreateCommand/updateContentCommand/postCreateCommand)' : 'postStartCommand'} failed in ${sandbox.name}: \`${shown}\` exited with ${code}. The sandbox is kept as it is, for you to look into.`,
        {
          hint: `Look with \`sbx shell ${sandbox.name}\`, retry with \`sbx exec ${sandbox.name} -- ${cmd.map((c) => (/^[\w./=:-]+$/.test(c) ? c : `'${c.replace(/'/g, `'\\''`)}'`)).join(' ')}\`, or remove it with \`sbx rm -f ${sandbox.name}\` (workspace files stay) and run sbx again to recreate it.`,
        },
      );
    }
  }
}
