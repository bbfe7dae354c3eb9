import { statSync } from 'node:fs';
import { readConfig } from '../config/config.js';
import { currentEndpoint, isLocalEndpoint } from '../engine/connection.js';
import {
  type ContainerInfo,
  createContainer,
  inspectContainer,
  startContainer,
} from '../engine/containers.js';
import { engineInfo } from '../engine/system.js';
import { ensureVolume, removeVolume } from '../engine/volumes.js';
import { gitIdentity } from '../git/identity.js';
import { putCa, secretPolicy, trustCa } from '../network/egress-secrets.js';
import { detachSandbox } from '../network/proxy.js';
import { SbxError } from '../shared/errors.js';
import { extraLabels, LABEL } from '../shared/labels.js';
import { parsePort } from '../shared/parse.js';
import { credentialsPlan, hostHome, prepareCredentials, statefulAgents } from './credentials.js';
import type { Sandbox, SandboxRequest } from './lifecycle.js';
import { agentKeysWarning, sandboxSecrets } from './secrets.js';
import { securityAddition } from './security.js';
import { createOptions, effectiveLimits, execUser, sandboxOwner } from './spec.js';
import { ensureTemplate, templateSpecFor } from './template-image.js';
import { engineSeesWorkspace, syncSandbox } from './workspace-sync.js';

/**
 * Creates a workspace's sandbox: its template image (built if needed), agent state, network and
 * policy, file guards and limits, then the container, started. Two concurrent calls end in one
 * container: the engine refuses the second name, and that caller adopts the first one's container.
 */
export async function createSandbox(
  req: SandboxRequest,
  name: string,
  reattach: (info: ContainerInfo, req: SandboxRequest) => Promise<Sandbox>,
): Promise<Sandbox> {
  const config = await readConfig();
  const templateSpec = await templateSpecFor(req.agent, req.template);
  const [image, engine] = await Promise.all([
    ensureTemplate(templateSpec, req.workspace, { nocache: false, reporter: req.reporter }),
    engineInfo(),
  ]);
  const agents = (image.info.Config?.Labels?.[LABEL.agents] ?? '').split(',');
  if (req.agent.name !== 'shell' && !agents.includes(req.agent.name)) {
    throw new SbxError(
      'conflict',
      `The template ${templateSpec} (${image.ref}) does not have ${req.agent.name} installed${agents[0] ? `; it has: ${agents.join(', ')}` : ' (it was not built from an sbx template)'}.`,
      {
        hint: `Start the template FROM sbx/${req.agent.template} so the agent, its user and its launch stay sbx's.`,
      },
    );
  }
  const sees = req.sync === true ? false : await engineSeesWorkspace(req.workspace, image.ref);
  if (req.sync === false && !sees)
    throw new SbxError(
      'usage',
      `--no-sync asks to mount ${req.workspace}, and the engine at ${currentEndpoint().url} cannot see it (another machine).`,
      { hint: 'Drop --no-sync: the sandbox then works on a synced copy (see `sbx sync --help`).' },
    );
  const sync = !sees;
  // Secrets are resolved before anything is made: a --command that fails starts nothing.
  const bindings = req.security.network === 'none' ? [] : sandboxSecrets(req.agent, config);
  const secrets = await secretPolicy(bindings);
  if (sync && req.worktree)
    throw new SbxError(
      'usage',
      `--branch needs an engine that sees the workspace, and ${currentEndpoint().url} does not (its sandboxes get a synced copy).`,
      {
        hint: 'Run the branch sandbox on a local engine (--host unix:///var/run/docker.sock), or sync a plain clone of the branch instead.',
      },
    );
  const syncVolume = sync ? `${name}-workspace` : undefined;
  const owner = sandboxOwner(statSync(req.workspace), engine);
  const git = await gitIdentity(req.workspace);
  const warnings: string[] = [];
  if (!git.name || !git.email) {
    warnings.push(
      `git has no ${git.name ? 'user.email' : git.email ? 'user.name' : 'user.name or user.email'} for ${req.workspace}, so commits made in the sandbox will lack it; set it with \`git config --global user.name "Your Name"\` and \`git config --global user.email you@example.com\`.`,
    );
  }
  const mode = req.credentials ?? config.credentials ?? 'sandbox';
  const stateful = statefulAgents(agents);
  const credentials = credentialsPlan(mode, stateful, execUser(owner.uid, owner.gid).home, hostHome());
  warnings.push(...credentials.warnings);
  const mounts = await prepareCredentials(credentials, stateful, mode, hostHome(), extraLabels());
  const ports = req.ports.length > 0 ? req.ports : (config.ports ?? []).map((p) => parsePort(p));
  const security = await securityAddition({
    name,
    workspace: req.workspace,
    agentHosts: [...new Set([req.agent, ...stateful].flatMap((a) => a.allowedHosts))],
    request: req.security,
    configMode: config.networkPolicy,
    ports,
    volumes: req.volumes,
    labels: extraLabels(),
    mountedRoots: req.worktree ? [req.worktree.gitDir] : [],
    synced: sync,
    secrets: secrets && { ...secrets, bindings },
  });
  if (sync && req.volumes.length > 0 && !isLocalEndpoint(currentEndpoint()))
    warnings.push(
      `the engine at ${currentEndpoint().url} is another machine: -v mounts its paths (${req.volumes.map((v) => v.host).join(', ')}), not this host's.`,
    );
  if (sync && ports.length > 0 && !isLocalEndpoint(currentEndpoint()))
    warnings.push(
      `the engine at ${currentEndpoint().url} is another machine: -p ports are published on its 127.0.0.1, reach them with an SSH tunnel (ssh -L).`,
    );
  warnings.push(...security.warnings, ...agentKeysWarning(req.agent, config));
  if (req.security.noSudo && owner.uid === 0)
    warnings.push(
      `the agent runs as root in ${name} (as the workspace's owner ${engine.rootless ? 'on a rootless Docker engine, which maps only root inside to you' : 'is root'}), so --no-sudo takes nothing from it.`,
    );
  const wt = req.worktree;
  let id: string | undefined;
  if (syncVolume) await ensureVolume(syncVolume, { ...extraLabels(), [LABEL.workspace]: req.workspace });
  try {
    id = await createContainer(
      createOptions({
        name,
        workspace: req.workspace,
        agent: req.agent,
        image: image.ref,
        templateRef: templateSpec,
        uid: owner.uid,
        gid: owner.gid,
        git,
        volumes: req.volumes,
        ports,
        limits: effectiveLimits(req.limits, config.limits ?? {}, engine),
        named: req.name !== undefined,
        syncVolume,
        additions: [
          { env: credentials.env, binds: credentials.binds, mounts, labels: { [LABEL.credentials]: mode } },
          security.addition,
          ...(wt
            ? [
                {
                  binds: [`${wt.gitDir}:${wt.gitDir}`],
                  labels: {
                    [LABEL.branch]: wt.branch,
                    [LABEL.repository]: wt.repository,
                    ...(wt.from ? { [LABEL.from]: wt.from } : {}),
                  },
                },
              ]
            : []),
        ],
        labels: extraLabels(),
        version: req.version,
      }),
    );
  } catch (err) {
    if (security.network !== 'none') await detachSandbox(security.network).catch(() => {});
    if (syncVolume) await removeVolume(syncVolume).catch(() => {});
    throw err;
  }
  if (!id && security.network !== 'none') await detachSandbox(security.network); // the other sbx's network is the one
  if (!id) {
    // The engine reserves the name before the other caller's container can be inspected: wait for it.
    let raced = await inspectContainer(name);
    for (const deadline = Date.now() + 10_000; !raced && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      raced = await inspectContainer(name);
    }
    if (!raced)
      throw new SbxError(
        'conflict',
        `The sandbox ${name} was created and removed while sbx was starting it.`,
        { hint: 'Run the command again.' },
      );
    return reattach(raced, req);
  }
  if (secrets) await putCa(id);
  await startContainer(id);
  if (secrets) {
    const problem = await trustCa(id);
    if (problem) warnings.push(problem);
  }
  if (syncVolume)
    await syncSandbox({ id, name, workspace: req.workspace, uid: owner.uid, gid: owner.gid }, 'push');
  const sandbox = {
    id,
    name,
    workspace: req.workspace,
    agent: req.agent.name,
    image: image.ref,
    uid: owner.uid,
    gid: owner.gid,
    created: true,
    credentials: mode,
    syncVolume,
    secrets: bindings.map((b) => b.name),
    warnings,
  };
  req.onCreated?.(sandbox);
  return sandbox;
}
