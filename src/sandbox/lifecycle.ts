/**
 * A sandbox's life, once for every command: find or create it, start it with what its network needs,
 * stop it with its port forwarder, remove it with its network, sync state and (asked) worktree.
 * Commands call these and never the engine.
 */
import { readConfig } from '../config/config.js';
import {
  type ContainerInfo,
  inspectContainer,
  listContainers,
  removeContainer,
  startContainer,
  stopContainer,
} from '../engine/containers.js';
import { SbxError } from '../shared/errors.js';
import { LABEL } from '../shared/labels.js';
import type { SyncReport } from '../sync/sync.js';
import { resolveSandbox, type SandboxRef } from './discovery.js';
import { sandboxName } from './identity.js';
import { reattachPlan, type Sandbox, type SandboxRequest } from './plan.js';

/**
 * Finds the workspace's sandbox by its name and labels, or creates it, and makes sure it runs.
 * Two concurrent calls end in one container: the engine refuses the second create (name taken)
 * and that caller adopts the first one's container.
 */
export async function ensureSandbox(req: SandboxRequest): Promise<Sandbox> {
  const name = req.name ?? sandboxName(req.workspace);
  const existing =
    (await inspectContainer(name)) ?? (req.name ? undefined : await renamedDefault(req.workspace));
  if (existing) return reattach(existing, req);

  // Creating loads templates, git, the network and more: only when there is nothing to reattach to.
  const { createSandbox } = await import('./create.js');
  return createSandbox(req, name, reattach);
}

/** The workspace's default sandbox when it was renamed behind sbx's back (docker rename): found by label. */
async function renamedDefault(workspace: string): Promise<ContainerInfo | undefined> {
  const found = (await listContainers([`${LABEL.managed}=true`, `${LABEL.workspace}=${workspace}`])).find(
    (c) => c.Labels?.[LABEL.named] !== 'true',
  );
  return found ? inspectContainer(found.Id) : undefined;
}

/** An existing container for a request: checked (see reattachPlan), and started when it is stopped. */
export async function reattach(info: ContainerInfo, req: SandboxRequest): Promise<Sandbox> {
  const { sandbox, start } = reattachPlan(info, req);
  const config = await readConfig();
  // Only this setting can warn; the secrets module (and the store it reads) is loaded only then.
  if (config.agentKeys === 'env') {
    const { agentKeysWarning } = await import('./secrets.js');
    sandbox.warnings.push(...agentKeysWarning(req.agent, config, process.env, sandbox.secrets));
  }
  if (start) {
    await startSandbox({
      id: info.Id,
      network: info.Config.Labels?.[LABEL.network] ?? null,
      secrets: sandbox.secrets,
      name: sandbox.name,
      dockerVolume: info.Config.Labels?.[LABEL.docker] ?? null,
    });
    const services = info.Config.Labels?.[LABEL.composeServices];
    const postStart = info.Config.Labels?.[LABEL.postStart];
    if (services || postStart) {
      const { runLifecycle, startComposeServices } = await import('./devcontainer.js');
      if (services) await startComposeServices(sandbox, JSON.parse(services), req.hookOutput);
      if (postStart)
        await runLifecycle(sandbox, 'postStartCommand', JSON.parse(postStart) as string[][], req.hookOutput);
    }
  }
  return sandbox;
}

/**
 * Starts a sandbox, with its egress proxy, port forwarder and its secrets' fresh values first; one that
 * runs is left as it is.
 */
export async function startSandbox(
  sandbox: Pick<SandboxRef, 'id' | 'network' | 'secrets'> &
    Partial<Pick<SandboxRef, 'name' | 'dockerVolume'>>,
): Promise<void> {
  if (sandbox.network && sandbox.network !== 'none') {
    const { ensureSandboxNetwork } = await import('../network/proxy.js');
    await ensureSandboxNetwork(sandbox.network, sandbox.secrets);
  }
  await startContainer(sandbox.id);
  // A --docker sandbox is ready when its own engine answers (or says why it does not).
  if (sandbox.dockerVolume) {
    const { waitForInnerEngine } = await import('./docker-inside.js');
    await waitForInnerEngine(sandbox.id, sandbox.name ?? sandbox.id);
  }
}

/** The sandbox a process is to run in (exec, shell, sync): resolved, and started when it is stopped. */
export async function runningSandbox(ref: string | undefined): Promise<SandboxRef> {
  const sandbox = await resolveSandbox(ref);
  if (sandbox.state !== 'running') await startSandbox(sandbox);
  return sandbox;
}

/** Stops a sandbox (SIGTERM, then SIGKILL after `seconds`) and its port forwarder, which holds its ports. */
export async function stopSandbox(sandbox: Pick<SandboxRef, 'id' | 'network'>, seconds = 10): Promise<void> {
  // A sandbox with its own git folder: its commits come to the host's refs first (best effort: a
  // stop must not fail for it; rm tries again and refuses when it cannot).
  const ownGit = await ownGitOf(sandbox.id);
  if (ownGit?.running)
    await (await import('../git/private-history.js')).importHistory(ownGit).catch(() => {});
  await stopContainer(sandbox.id, seconds);
  if (sandbox.network && sandbox.network !== 'none')
    await (await import('../network/proxy.js')).stopForwarder(sandbox.network);
}

export interface RemoveOptions {
  /** Remove it even while it runs (it is stopped first). */
  force: boolean;
  /** A synced sandbox: do not copy its changes back first (they are lost). */
  discardChanges?: boolean;
  /** A branch sandbox: also remove its worktree; refused when it has work of its own, unless force. */
  worktree?: { force: boolean } | undefined;
  /** Progress of the copy back of a synced sandbox. */
  report?: SyncReport;
}

/**
 * Removes a sandbox: the container, its network and port forwarder, a synced sandbox's workspace copy
 * (after copying its changes back) and sync state, a --docker sandbox's inner engine (its volume),
 * and when asked its worktree. Workspace files and
 * agent logins are never touched.
 */
export async function removeSandbox(sandbox: SandboxRef, options: RemoveOptions): Promise<void> {
  if (sandbox.state !== 'stopped' && !options.force)
    throw new SbxError('conflict', `${sandbox.name} is running.`, {
      hint: `Stop it first (sbx stop ${sandbox.name}), or use \`sbx rm -f ${sandbox.name}\`.`,
    });
  const worktree = options.worktree && sandbox.branch ? await import('../git/worktree.js') : undefined;
  if (worktree) await worktree.checkWorktree(sandbox.workspace, sandbox.branch!, options.worktree!.force);
  const ownGit = await ownGitOf(sandbox.id);
  if (ownGit) {
    // The agent's commits live in the sandbox's own git folder: brought to the host's refs first.
    if (sandbox.state !== 'running') await startContainer(sandbox.id);
    const { importHistory } = await import('../git/private-history.js');
    try {
      await importHistory(ownGit);
    } catch (err) {
      if (!options.force)
        throw new SbxError(
          'conflict',
          `The commits of ${sandbox.name} could not be brought to the host: ${(err as Error).message}`,
          {
            hint: `Nothing was removed. Fix the repository, or use \`sbx rm -f ${sandbox.name}\` to remove it and lose them.`,
          },
        );
    }
  }
  if (sandbox.syncVolume && !options.discardChanges) {
    // Its workspace copy may hold the only copy of the agent's work: back here first.
    if (sandbox.state !== 'running') await startContainer(sandbox.id);
    const { syncSandbox } = await import('./workspace-sync.js');
    await syncSandbox(sandbox, 'pull', undefined, options.report);
  }
  // Started above for the copy back or the commits: removed running.
  await removeContainer(sandbox.id, options.force || Boolean(sandbox.syncVolume) || Boolean(ownGit));
  if (sandbox.network && sandbox.network !== 'none')
    await (await import('../network/proxy.js')).detachSandbox(sandbox.network);
  if (sandbox.syncVolume) {
    await (await import('../engine/volumes.js')).removeVolume(sandbox.syncVolume);
    (await import('../sync/sync.js')).forgetSyncState(sandbox.id);
  }
  // The inner engine's images, containers and volumes are the sandbox's own: they go with it.
  if (sandbox.dockerVolume) await (await import('../engine/volumes.js')).removeVolume(sandbox.dockerVolume);
  if (ownGit) await (await import('../engine/volumes.js')).removeVolume(ownGit.volume).catch(() => {});
  if (worktree) await worktree.removeWorktree(sandbox.workspace);
}

/** A sandbox's private git (its volume, where it is mounted, its host repository), from its labels. */
export async function ownGitOf(id: string): Promise<
  | {
      id: string;
      name: string;
      running: boolean;
      volume: string;
      gitDir: string;
      repository: import('../git/host-git.js').HostRepository;
    }
  | undefined
> {
  const { GIT_DIR_LABEL, GIT_VOLUME_LABEL, repositoryOfGitDir } = await import('../git/private-history.js');
  const info = await inspectContainer(id);
  const labels = info?.Config?.Labels ?? {};
  const volume = labels[GIT_VOLUME_LABEL];
  const gitDir = labels[GIT_DIR_LABEL];
  const repository = gitDir ? repositoryOfGitDir(gitDir) : undefined;
  if (!info || !volume || !gitDir || !repository) return undefined;
  const name = info.Name.replace(/^\//, '');
  return { id, name, running: Boolean(info.State?.Running), volume, gitDir, repository };
}
