import { statSync } from 'node:fs';
import { join } from 'node:path';
import { configDir, readConfig } from '../config/config.js';
import { extraCaCerts, proxyEnv } from '../config/tls-proxy.js';
import { currentEndpoint, isLocalEndpoint } from '../engine/connection.js';
import {
  type ContainerInfo,
  createContainer,
  inspectContainer,
  removeContainer,
  startContainer,
} from '../engine/containers.js';
import { execCapture } from '../engine/exec.js';
import { engineInfo } from '../engine/system.js';
import { ensureVolume, removeVolume } from '../engine/volumes.js';
import { gitIdentity } from '../git/identity.js';
import { initScript, privateGit, seedGit } from '../git/private-history.js';
import { putCa, secretPolicy, trustCa } from '../network/egress-secrets.js';
import { detachSandbox } from '../network/proxy.js';
import { SbxError, usageError } from '../shared/errors.js';
import { currentUser, extraLabels, LABEL } from '../shared/labels.js';
import { parseIdleStop, parsePort } from '../shared/parse.js';
import { ensureDockerLayer } from '../templates/docker-layer.js';
import { type BuildEgress, buildEgress } from './build-egress.js';
import { credentialsPlan, hostHome, prepareCredentials, statefulAgents } from './credentials.js';
import {
  composeNote,
  devcontainerAddition,
  devcontainerBinds,
  devcontainerFor,
  ensureDevcontainer,
  missingToolsWarning,
  runLifecycle,
  startComposeServices,
} from './devcontainer.js';
import {
  checkDockerRequest,
  dockerAddition,
  dockerSeccomp,
  dockerVolume,
  waitForInnerEngine,
} from './docker-inside.js';
import {
  checkAgentInImage,
  creationWarnings,
  type Sandbox,
  type SandboxRequest,
  syncWorkspace,
} from './plan.js';
import { checkSocketMount, chooseInnerSandbox, chooseRuntime, isGvisor } from './runtime.js';
import { nestedNamespacesSeccomp, sandboxSeccomp, seccompFile } from './seccomp.js';
import { agentKeysWarning, sandboxSecrets } from './secrets.js';
import { isSocket, securityAddition } from './security.js';
import { createOptions, effectiveLimits, execUser, sandboxOwner } from './spec.js';
import { ensureTemplate, templateSpecFor } from './template-image.js';
import { ensureApproved } from './trust.js';
import { checkMounts } from './workspace-guard.js';
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
  const dc = devcontainerFor(req, config);
  // The dev container's bind mounts are checked like -v, before anything is built.
  const volumes = dc ? [...req.volumes, ...devcontainerBinds(dc)] : req.volumes;
  // A project, not a home; sbx's own folders never inside (refused before anything is made).
  const place = checkMounts(req.workspace, volumes, req.allowHomeWorkspace === true);
  // The workspace's own configuration files, as the user approved them, before anything is made.
  await ensureApproved(req.workspace, dc, req.approve);
  const templateSpec = dc ? dc.file.path : await templateSpecFor(req.agent, req.template);
  const engine = await engineInfo();
  // Checked before the template is built or anything is made.
  const runtime = chooseRuntime(req.runtime, config, req.agent.name, engine);
  checkSocketMount(
    runtime,
    engine.runtimeDetails,
    req.security.mountDockerSocket ? 'the Docker socket' : volumes.find((v) => isSocket(v.host))?.host,
  );
  // The inner guard: under gVisor the agent's namespaces are gVisor's own, and the plain profile stays.
  const inner = chooseInnerSandbox(req.innerSandbox, config, req.agent.name);
  // Every sandbox's profile refuses setuid/setgid modes (seccomp.ts): nothing it writes lends a host user an ID.
  const seccomp =
    inner && !isGvisor(runtime, engine.runtimeDetails)
      ? seccompFor(engine.podman, configDir(), '--inner-sandbox', 'inner-sandbox', nestedNamespacesSeccomp())
      : plainSeccomp(engine.podman, configDir());
  const docker = req.docker ?? config.dockers?.[req.agent.name] ?? config.docker ?? false;
  if (docker)
    checkDockerRequest({
      mountDockerSocket: req.security.mountDockerSocket || volumes.some((v) => isSocket(v.host)),
      noSudo: req.security.noSudo,
      runtime,
      gvisor: isGvisor(runtime, engine.runtimeDetails),
    });
  const dockerProfile = docker
    ? seccompFor(engine.podman, configDir(), '--docker', 'docker', dockerSeccomp())
    : undefined;
  // A dev container's builds run behind the proxy, on a network made only if something is built.
  let buildNet: Promise<BuildEgress> | undefined;
  const buildNetwork = dc
    ? () =>
        (buildNet ??= buildEgress({
          name,
          workspace: req.workspace,
          agentHosts: req.agent.allowedHosts,
          request: req.security,
          configMode: config.networkPolicy,
          labels: extraLabels(),
        }))
    : undefined;
  let base: Awaited<ReturnType<typeof ensureTemplate>>;
  let image: typeof base;
  try {
    base = dc
      ? await ensureDevcontainer(dc, req.workspace, req.agent, config, {
          nocache: false,
          reporter: req.reporter,
          buildNetwork,
        })
      : await ensureTemplate(templateSpec, req.workspace, { nocache: false, reporter: req.reporter });
    image = docker
      ? await ensureDockerLayer(base, {
          caCerts: extraCaCerts(config.caCerts),
          labels: extraLabels(),
          buildargs: proxyEnv(),
          nocache: false,
          reporter: req.reporter,
          buildNetwork,
        })
      : base;
  } finally {
    if (buildNet) await (await buildNet.catch(() => undefined))?.done();
  }
  const agents = (image.info.Config?.Labels?.[LABEL.agents] ?? '').split(',');
  checkAgentInImage(req.agent, templateSpec, image.ref, agents);
  const endpoint = currentEndpoint();
  const sync = syncWorkspace(
    req,
    req.sync === true ? false : await engineSeesWorkspace(req.workspace, image.ref),
    endpoint.url,
  );
  // A synced copy would carry sbx's own folders into a volume, where no mount can hide them.
  if (sync && place.hidden.length > 0)
    throw usageError(
      `${req.workspace} holds sbx's own folders (${place.hidden.join(', ')}), and a synced sandbox would get a copy of them. Nothing was created.`,
      'Run sbx in a project folder instead, or use an engine on this machine (--no-sync).',
    );
  // Secrets are resolved before anything is made: a --command that fails starts nothing.
  const bindings = req.security.network === 'none' ? [] : sandboxSecrets(req.agent, config);
  const secrets = await secretPolicy(bindings);
  const syncVolume = sync ? `${name}-workspace` : undefined;
  const owner = sandboxOwner(statSync(req.workspace), engine.flavour.userMapping);
  const git = await gitIdentity(req.workspace);
  const mode = req.credentials ?? config.credentials ?? 'sandbox';
  const stateful = statefulAgents(agents);
  const credentials = credentialsPlan(mode, stateful, execUser(owner.uid, owner.gid).home, hostHome());
  const user = currentUser();
  const { mounts, notes: loginNotes } = await prepareCredentials(
    credentials,
    stateful,
    mode,
    hostHome(),
    extraLabels(),
    { user, insideUid: sandboxOwner({ uid: Number(user || 0), gid: 0 }, engine.flavour.userMapping).uid },
  );
  const asked = req.ports.length > 0 ? req.ports : (config.ports ?? []).map((p) => parsePort(p));
  const fromDc = dc ? devcontainerAddition(dc, asked, docker) : undefined;
  const ports = fromDc ? fromDc.ports : asked;
  // Private history: the host's git folder read-only, the sandbox's own in a volume (not for a synced
  // workspace, whose copy is the sandbox's already).
  const ownGit = sync ? undefined : privateGit(name, req.workspace, req.worktree);
  const security = await securityAddition({
    name,
    workspace: req.workspace,
    agentHosts: [...new Set([req.agent, ...stateful].flatMap((a) => a.allowedHosts))],
    request: req.security,
    configMode: config.networkPolicy,
    ports,
    volumes,
    labels: extraLabels(),
    mountedRoots: req.worktree && !ownGit ? [req.worktree.gitDir] : [],
    synced: sync,
    privateGit: Boolean(ownGit),
    seccomp,
    secrets: secrets && { ...secrets, bindings },
    localHosts: docker && dc?.compose ? dc.compose.services : [],
  });
  const warnings = [
    ...creationWarnings({
      name,
      req: { ...req, volumes },
      git,
      ports,
      remote: sync && !isLocalEndpoint(endpoint) ? endpoint.url : undefined,
      ownerUid: owner.uid,
      rootless: engine.rootless,
      innerSandbox: inner,
    }),
    ...credentials.warnings,
    ...loginNotes,
    ...security.warnings,
    ...agentKeysWarning(req.agent, config),
    ...(seccomp ? [] : [REMOTE_PODMAN_SECCOMP]),
    ...place.warnings,
    ...[...(dc?.notes ?? []), ...(dc ? composeNote(dc, docker) : [])].map((note) => `dev container: ${note}`),
    ...(dc ? missingToolsWarning(base.info.Config?.Labels) : []),
  ];
  const wt = req.worktree;
  let id: string | undefined;
  /** Another sbx made this sandbox first (the engine refused the name): its container is the one. */
  const adopt = async (): Promise<Sandbox> => {
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
  };
  /** A creation that fails removes what it made: the container, the network, the sandbox's volumes. */
  const undo = async (container: string | undefined) => {
    if (container) await removeContainer(container, true).catch(() => {});
    if (security.network !== 'none') await detachSandbox(security.network).catch(() => {});
    if (syncVolume) await removeVolume(syncVolume).catch(() => {});
    if (docker) await removeVolume(dockerVolume(name)).catch(() => {});
    if (ownGit) await removeVolume(ownGit.volume).catch(() => {});
  };
  if (syncVolume) await ensureVolume(syncVolume, { ...extraLabels(), [LABEL.workspace]: req.workspace });
  if (ownGit) await ensureVolume(ownGit.volume, { ...extraLabels(), [LABEL.workspace]: req.workspace });
  if (docker)
    await ensureVolume(dockerVolume(name), {
      ...extraLabels(),
      [LABEL.workspace]: req.workspace,
      [LABEL.docker]: dockerVolume(name),
    });
  // The dev container's named volumes: made with sbx's labels, and kept when the sandbox is removed.
  for (const m of dc?.mounts ?? [])
    if (m.type === 'volume')
      await ensureVolume(m.source, { ...extraLabels(), [LABEL.workspace]: req.workspace });
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
        user,
        git,
        volumes,
        ports,
        limits: effectiveLimits(req.limits, config.limits ?? {}, engine),
        named: req.name !== undefined,
        idleStop: req.idleStop ?? (config.idleStop ? parseIdleStop(config.idleStop) : 0),
        syncVolume,
        additions: [
          { env: credentials.env, binds: credentials.binds, mounts, labels: { [LABEL.credentials]: mode } },
          security.addition,
          ...(place.mounts.length > 0 ? [{ mounts: place.mounts }] : []),
          ...(dockerProfile ? [dockerAddition(name, dockerProfile)] : []),
          ...(runtime ? [{ host: { Runtime: runtime } }] : []),
          // Recorded as created: Podman reports every runtime as "oci".
          ...(runtime || engine.defaultRuntime
            ? [{ labels: { [LABEL.runtime]: runtime ?? engine.defaultRuntime } }]
            : []),
          ...(inner ? [{ env: ['SBX_INNER_SANDBOX=1'], labels: { [LABEL.innerSandbox]: 'true' } }] : []),
          ...(fromDc ? [fromDc.addition] : []),
          ...(ownGit ? [{ mounts: ownGit.mounts, labels: ownGit.labels }] : []),
          ...(wt
            ? [
                {
                  binds: ownGit ? [] : [`${wt.gitDir}:${wt.gitDir}`],
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
    await security.ready.catch(() => {});
    await undo(undefined);
    throw err;
  }
  if (!id) {
    // Lost the race: the other sbx's sandbox (with its own network, and these volumes) is the one.
    await security.ready.catch(() => {});
    if (security.network !== 'none') await detachSandbox(security.network).catch(() => {});
    return adopt();
  }
  const resolved = runtime ? await engine.flavour.resolvedRuntime(id) : undefined;
  if (runtime && resolved && resolved !== runtime) {
    await security.ready.catch(() => {});
    await undo(id);
    throw new SbxError(
      'notFound',
      `${engine.flavour.name} ${engine.version} did not apply the runtime ${runtime}: the sandbox would have run under ${resolved} (its Docker-compatible API ignores the runtime asked for). Nothing was created.`,
      {
        hint: `Make ${runtime} Podman's default runtime (containers.conf: [engine] runtime = "${runtime}") and create the sandbox without --runtime, or use Docker. See docs/runtimes.md.`,
      },
    );
  }
  // The proxy joined the network and the policy was written meanwhile: both before the sandbox starts.
  // (Started side by side, Podman 4.3 sometimes left the sandbox's first requests unanswered.)
  try {
    await security.ready;
  } catch (err) {
    await undo(id);
    throw err;
  }
  if (secrets) await putCa(id);
  if (ownGit)
    try {
      await seedGit(id, ownGit, owner.uid, owner.gid);
    } catch (err) {
      await undo(id);
      throw err;
    }
  await startContainer(id);
  if (ownGit) {
    const made = await execCapture(id, ['sh', '-c', initScript(ownGit, owner.uid, owner.gid)]);
    if (made.code !== 0) {
      await undo(id);
      throw new SbxError(
        'conflict',
        `The sandbox's own git folder could not be made: ${made.stderr.trim()}`,
        {
          hint: 'Check the repository with `git status` on the host; nothing was created.',
        },
      );
    }
  }
  if (docker) await waitForInnerEngine(id, name);
  if (runtime !== undefined && runtime !== engine.defaultRuntime && !req.security.noSudo) {
    const warning = await setuidWarning(id, name, runtime);
    if (warning) warnings.push(warning);
  }
  // (--docker sandboxes keep setuid modes anyway: see docker-inside.ts.)
  if (runtime !== undefined && runtime !== engine.defaultRuntime && seccomp && !docker) {
    const warning = await unfilteredModesWarning(id, name, runtime);
    if (warning) warnings.push(warning);
  }
  if (secrets) {
    const problem = await trustCa(id);
    if (problem) warnings.push(problem);
  }
  if (syncVolume)
    await syncSandbox(
      { id, name, workspace: req.workspace, uid: owner.uid, gid: owner.gid },
      'push',
      undefined,
      req.syncReport,
    );
  if (dc) {
    const ref = { id, name, workspace: req.workspace, uid: owner.uid, gid: owner.gid };
    if (docker && dc.compose) await startComposeServices(ref, dc.compose, req.hookOutput);
    await runLifecycle(ref, 'postCreateCommand', dc.createCommands, req.hookOutput);
    await runLifecycle(ref, 'postStartCommand', dc.startCommands, req.hookOutput);
  }
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
    devcontainer: dc?.file.path,
    warnings,
  };
  req.onCreated?.(sandbox);
  return sandbox;
}

/**
 * Some runtimes (gVisor before setuid support, e.g. Debian 12's runsc) run every process with
 * no_new_privs, so sudo cannot work: said once, when such a sandbox is created. sudo says why when
 * an unprivileged user starts it, before it reads any sudoers rule.
 */
async function setuidWarning(id: string, name: string, runtime: string): Promise<string | undefined> {
  const probe = await execCapture(id, [
    'setpriv',
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    'sudo',
    '-n',
    'true',
  ]).catch(() => undefined);
  if (!probe || !/no new privileges/i.test(`${probe.stdout}${probe.stderr}`)) return undefined;
  return `the runtime ${runtime} does not honour setuid programs, so sudo does not work in ${name} (as with --no-sudo); run what needs root with \`sbx exec -u root ${name} -- COMMAND\`, or use a gVisor release with setuid support (see docs/runtimes.md).`;
}

/**
 * Some runtimes do not apply the container's seccomp profile (gVisor's runsc unless registered with
 * --oci-seccomp): then a setuid bit set inside reaches the host's file. Tried once, as root, on a
 * file in the sandbox's own /tmp, when such a sandbox is created.
 */
async function unfilteredModesWarning(
  id: string,
  name: string,
  runtime: string,
): Promise<string | undefined> {
  const probe = await execCapture(id, [
    'sh',
    '-c',
    'f=$(mktemp) || exit 2; chmod 4755 "$f" 2>/dev/null; r=$?; rm -f "$f"; exit $r',
  ]).catch(() => undefined);
  if (probe?.code !== 0) return undefined;
  return `the runtime ${runtime} does not apply sbx's seccomp profile, so root in ${name} (sudo) can leave setuid files in the workspace and -v folders that give a host user its rights; register gVisor with --oci-seccomp (see docs/runtimes.md), or use --no-sudo.`;
}

/**
 * A seccomp profile as the engine takes it: Docker its text; Podman a path on its machine, so only
 * an engine on this machine (a file in sbx's config folder). `what` names the option that needs it.
 */
function seccompFor(podman: boolean, dir: string, what: string, name: string, text: string): string {
  if (!podman) return text;
  const endpoint = currentEndpoint();
  if (!isLocalEndpoint(endpoint))
    throw usageError(
      `${what} under Podman needs its seccomp profile as a file on the engine's machine, and ${endpoint.url} is another machine. Nothing was created.`,
      'Use a Podman engine on this machine, or Docker (which takes the profile over its API).',
    );
  return seccompFile(join(dir, 'seccomp'), name, text);
}

/** Said when a sandbox gets the engine's own seccomp profile: Podman on another machine. */
const REMOTE_PODMAN_SECCOMP =
  "the Podman engine is on another machine, where sbx cannot put its seccomp profile, so this sandbox has the engine's default one: root inside it (sudo) can leave setuid files in the workspace and -v folders; use --no-sudo, or a Podman engine on this machine, or Docker.";

/** The profile of a sandbox without the inner guard (see seccompFor); none on a remote Podman engine. */
function plainSeccomp(podman: boolean, dir: string): string | undefined {
  if (podman && !isLocalEndpoint(currentEndpoint())) return undefined;
  return podman ? seccompFile(join(dir, 'seccomp'), 'sandbox', sandboxSeccomp()) : sandboxSeccomp();
}
