import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { readConfig } from '../config/config.js';
import { upstreamProxy } from '../config/tls-proxy.js';
import { currentEndpoint } from '../engine/connection.js';
import {
  createContainer,
  inspectContainer,
  listContainers,
  removeContainer,
  startContainer,
  stopContainer,
} from '../engine/containers.js';
import { isMissing } from '../engine/errors.js';
import { execCapture } from '../engine/exec.js';
import { inspectImage } from '../engine/images.js';
import {
  connectNetwork,
  createNetwork,
  listNetworks,
  networkSubnets,
  removeNetwork,
} from '../engine/networks.js';
import { engineInfo } from '../engine/system.js';
import { ensureVolume, putArchive } from '../engine/volumes.js';
import { SbxError } from '../shared/errors.js';
import { extraLabels, LABEL } from '../shared/labels.js';
import { parseLogSize } from '../shared/parse.js';
import { refreshSecretPolicy } from './egress-secrets.js';
import type { Policy, ProxyLimits, SandboxPolicy } from './policy.js';

/**
 * The one filtering proxy of an engine, shared by every sandbox; its state (a volume of the same name
 * plus -state) survives its replacement. SBX_PROXY_NAME gives a set of sandboxes a proxy of their own
 * (the test suite's runs use it, so they never replace or stop the proxy a user's sandboxes rely on).
 */
export const PROXY_NAME = proxyName();
const PROXY_STATE = `${PROXY_NAME}-state`;

function proxyName(env: NodeJS.ProcessEnv = process.env): string {
  const name = env.SBX_PROXY_NAME || 'sbx-proxy';
  // Read at start-up: a name the engine would refuse falls back to the default, and says so under --debug.
  return /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(name) ? name : 'sbx-proxy';
}
const PROXY_PORT = 3128;
/**
 * Source addresses are checked against the interface they arrive on: a packet claiming a sandbox's
 * address that arrives by another network is dropped, not taken for that sandbox's.
 */
const STRICT_SOURCES = { 'net.ipv4.conf.all.rp_filter': '1', 'net.ipv4.conf.default.rp_filter': '1' };

const PROXY_IMAGE = 'sbx/base:latest';

const CODE_DIR = dirname(fileURLToPath(import.meta.url));
const CODE_FILES = ['proxy-server.js', 'policy.js', 'port-forward.js'];
/** The sandbox's name on its own network, which its port forwarder connects to. */
export const SANDBOX_ALIAS = 'sandbox';

/** What the sandbox's processes are told: every HTTP client that honours proxies goes through sbx's. */
export function sandboxProxyEnv(): string[] {
  const url = `http://${PROXY_NAME}:${PROXY_PORT}`;
  const noProxy = 'localhost,127.0.0.1,::1';
  return [
    `HTTP_PROXY=${url}`,
    `HTTPS_PROXY=${url}`,
    `http_proxy=${url}`,
    `https_proxy=${url}`,
    `NO_PROXY=${noProxy}`,
    `no_proxy=${noProxy}`,
  ];
}

/**
 * A new network's name: the sandbox's, plus a random part, because two sbx creating the same
 * sandbox at once would otherwise make two networks of one name (the engine does not refuse them);
 * the one that loses the container-name race removes its own.
 */
export const networkNameOf = (sandbox: string) => `sbx-net-${sandbox}-${randomBytes(3).toString('hex')}`;

/** The one library the proxy's code imports (policy.ts parses addresses with it), shipped beside it. */
function ipaddrFiles(): Array<[string, string]> {
  const main = createRequire(import.meta.url).resolve('ipaddr.js');
  const root = dirname(dirname(main));
  return ['package.json', 'lib/ipaddr.js'].map((f) => [
    `node_modules/ipaddr.js/${f}`,
    readFileSync(join(root, f), 'utf8'),
  ]);
}

function code(): { files: Array<[string, string]>; hash: string } {
  const files: Array<[string, string]> = CODE_FILES.map((f) => [f, readFileSync(join(CODE_DIR, f), 'utf8')]);
  files.push(...ipaddrFiles());
  files.push(['package.json', '{"type":"module"}\n']);
  const hash = createHash('sha256');
  for (const [name, text] of files) hash.update(`${name}\0${text}\0`);
  return { files, hash: hash.digest('hex').slice(0, 16) };
}

/**
 * Makes sure the proxy container runs this sbx's proxy code: created (from the base template, with
 * no capabilities), replaced when the code changed, started when stopped. Returns its id. Several
 * sbx may do this at once (parallel runs after an upgrade): one removes the old proxy, one creates
 * the new one, copies the code in and starts it; the others wait for that and use it.
 */
export async function ensureProxy(): Promise<string> {
  const { files, hash } = code();
  let waitingSince: number | undefined;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    const existing = await inspectContainer(PROXY_NAME);
    if (existing?.Config.Labels?.[LABEL.proxyCode] === hash) {
      if (existing.State.Running) {
        // Podman keeps saying "running" when the proxy's process and its conmon died without a
        // cleanup (killed, or a reboot that kept /run): there, check that it can be entered (70 ms).
        // One just started by another sbx may not be yet: it gets 15 s.
        if (!(await engineInfo()).flavour.runningMayBeStale || (await answers(existing.Id)))
          return existing.Id;
        if (Date.now() - Date.parse(existing.State.StartedAt) > 15_000) {
          // Its first removal fails ("could not be stopped"), having marked it stopped; the second works.
          await removeContainer(existing.Id, true).catch(() => removeContainer(existing.Id, true));
          continue;
        }
      } else if (existing.State.Status !== 'created') await startContainer(existing.Id);
      else {
        // Just created by another sbx, which starts it once the code is in; one left so for 15 s
        // (its sbx died meanwhile) is replaced.
        waitingSince ??= Date.now();
        if (Date.now() - waitingSince > 15_000) await removeContainer(existing.Id, true);
      }
    } else if (existing) {
      await removeContainer(existing.Id, true);
    } else {
      const id = await createProxy(hash);
      if (id) {
        await putArchive(id, '/opt', await codeArchive(files));
        await startContainer(id);
        // Sandboxes made before a replacement get their networks back (one removed meanwhile is skipped).
        for (const network of await proxyNetworks())
          await connectNetwork(network.name, id, PROXY_NAME, addressIn(network.subnet, 'proxy')).catch(
            (err) => {
              if (!isMissing(err)) throw err;
            },
          );
        return id;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new SbxError('conflict', 'The egress proxy (sbx-proxy) did not come up within a minute.', {
    hint: 'Run again; if it persists, see `docker logs sbx-proxy`, or remove it with `docker rm -f sbx-proxy` (sbx makes it anew).',
  });
}

/** Whether a process can be started in the proxy. */
const answers = (id: string) =>
  execCapture(id, ['true']).then(
    (r) => r.code === 0,
    () => false,
  );

/**
 * What a sandbox's network needs before the sandbox starts, which may have stopped with it (a reboot:
 * Podman applies restart policies only through its systemd unit; or by hand): the egress proxy,
 * made or replaced as needed, the sandbox's port forwarder, and its secrets' values (resolved again).
 */
export async function ensureSandboxNetwork(network: string, secrets: readonly string[] = []): Promise<void> {
  await ensureProxy();
  if (secrets.length > 0) await refreshSecrets(network);
  const forwarder = await inspectForwarder(network);
  if (forwarder && !forwarder.State.Running) await startContainer(forwarder.Id);
}

/** Stops a sandbox's port forwarder (when it has one), which holds its host ports while it runs. */
export async function stopForwarder(network: string): Promise<void> {
  const forwarder = await inspectForwarder(network);
  if (forwarder?.State.Running) await stopContainer(forwarder.Id, 1);
}

/**
 * A starting sandbox's secrets, fresh: values resolved again (a --command runs; its failure stops the
 * start), a new certificate. Only the policy file changes; the sandbox keeps its placeholders.
 */
async function refreshSecrets(network: string): Promise<void> {
  const policy = await readPolicy(network);
  if (!policy?.secrets?.length) return;
  const fresh = await refreshSecretPolicy(policy);
  if (fresh) await writePolicy({ ...policy, ...fresh });
}

/** Creates the proxy container (not started); undefined when another sbx has just made one. */
async function createProxy(hash: string): Promise<string | undefined> {
  if (!(await inspectImage(PROXY_IMAGE)))
    throw new SbxError('notFound', 'The egress proxy runs from the base template, which is not built.', {
      hint: 'Run `sbx template build base`, or any `sbx run`, first.',
    });
  await ensureVolume(PROXY_STATE, { ...extraLabels(), [LABEL.proxy]: PROXY_NAME });
  return createContainer({
    name: PROXY_NAME,
    Image: PROXY_IMAGE,
    // Sized for its caps: each sandbox's connections are capped (ProxyLimits), and a few thousand
    // open at once (tunnels with their buffers) fit in this heap and memory.
    Entrypoint: ['node', '--max-old-space-size=192', '/opt/sbx-proxy/proxy-server.js'],
    Cmd: [],
    Labels: { ...extraLabels(), [LABEL.proxy]: PROXY_NAME, [LABEL.proxyCode]: hash },
    HostConfig: {
      Mounts: [{ Type: 'volume', Source: PROXY_STATE, Target: '/state' }],
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Sysctls: STRICT_SOURCES,
      RestartPolicy: { Name: 'unless-stopped' },
      Memory: 512 * 2 ** 20,
      PidsLimit: 64,
    },
  });
}

/**
 * Where each member of a sandbox network lives on its /28 (.1 is the gateway). Fixed, so that they
 * find each other through /etc/hosts as well as through the engine's DNS, which a network without
 * DNS (Podman's, see Flavour.createInternalNetwork) does not have; a replaced proxy gets its address back.
 */
const MEMBERS = { proxy: 2, sandbox: 3, forwarder: 4 };

/** The address of a member on a sandbox network's subnet (none for a network without one). */
export function addressIn(subnet: string | undefined, member: keyof typeof MEMBERS): string | undefined {
  if (!subnet) return undefined;
  const [a, b, c, d] = subnet.split('/')[0]!.split('.').map(Number);
  return `${a}.${b}.${c}.${d! + MEMBERS[member]}`;
}

/**
 * Gives a new sandbox its internal network and, before the sandbox starts, the proxy joined to it and
 * its policy, so its first request is already filtered. Returns the network to put it on and its
 * subnet as soon as the network exists, and `joined`, done once the proxy is on it and the policy
 * written (one exec, which also lists the policies for the stale-policy clean-up): those need only
 * the network, so they go on while the sandbox's container is created, and the caller awaits
 * `joined` before starting it.
 */
export async function attachSandbox(
  sandbox: string,
  policy: Policy,
  labels: Record<string, string>,
): Promise<{ network: string; subnet: string; joined: Promise<void> }> {
  const proxy = await ensureProxy();
  await forgetOrphanNetworks(sandbox);
  const network = networkNameOf(sandbox);
  const taken = new Set(await networkSubnets());
  const subnet = await createNetwork(
    'internal',
    network,
    { ...labels, [LABEL.network]: sandbox, [LABEL.proxy]: PROXY_NAME },
    [...sandboxSubnets(sandbox)].filter((s) => !taken.has(s)),
  );
  const joined = settled([
    connectNetwork(network, proxy, PROXY_NAME, addressIn(subnet, 'proxy')),
    writePolicy({ ...policy, sandbox, network, subnet }).then((files) => forgetStalePolicies(proxy, files)),
  ]);
  return { network, subnet, joined };
}

/**
 * All of the given operations, settled: rejected with the first failure once every one has ended
 * (so that nothing is still running when the caller cleans up), and never an unhandled rejection
 * while the caller is busy with something else before awaiting it.
 */
async function settled(operations: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(operations);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * A new sandbox's only way out, made before the sandbox starts: its internal network joined by the
 * proxy, its policy written (the host's own proxy as its upstream), and its port forwarder. Returns
 * how the sandbox joins that network once the network exists, and `ready`, to await before starting
 * the sandbox (the rest is done meanwhile; see attachSandbox). `ready` never rejects unawaited.
 */
export async function sandboxEgress(
  sandbox: string,
  policy: Policy,
  /** Host ports to publish, as the engine's port bindings (none: no forwarder). */
  ports: Record<string, Array<{ HostIp: string; HostPort: string }>> | undefined,
  labels: Record<string, string>,
): Promise<{
  network: string;
  aliases: string[];
  address: string | undefined;
  extraHosts: string[];
  env: string[];
  ready: Promise<void>;
}> {
  const { network, subnet, joined } = await attachSandbox(
    sandbox,
    { ...policy, upstream: upstreamProxy(), limits: await proxyLimits() },
    labels,
  );
  const ready = settled([joined, ...(ports ? [ensureForwarder(network, subnet, ports, labels)] : [])]);
  ready.catch(() => {}); // awaited by the caller, after the container's creation
  return {
    network,
    aliases: [SANDBOX_ALIAS],
    address: addressIn(subnet, 'sandbox'),
    extraHosts: [`${PROXY_NAME}:${addressIn(subnet, 'proxy')}`],
    env: sandboxProxyEnv(),
    ready,
  };
}

/** What a new sandbox may take of the shared proxy, from config (the proxy's defaults for what is unset). */
async function proxyLimits(): Promise<Partial<ProxyLimits>> {
  const { proxy } = await readConfig();
  return {
    ...(proxy?.connections ? { connections: proxy.connections } : {}),
    ...(proxy?.logSize ? { logBytes: parseLogSize(proxy.logSize) } : {}),
  };
}

/**
 * Where sandbox networks live: small /28 subnets (a sandbox, the proxy and a port forwarder need
 * three addresses) of one /16, SBX_SUBNET_POOL (default 10.213.0.0/16), rather than Docker's default
 * pools, which hold about 30 networks. Each sandbox starts at a place picked by its name.
 */
export function* sandboxSubnets(
  sandbox: string,
  pool = process.env.SBX_SUBNET_POOL ?? '10.213.0.0/16',
): Generator<string> {
  const [a, b] = pool.split('/')[0]!.split('.').map(Number);
  const start = createHash('sha256').update(sandbox).digest().readUInt16BE(0) % 4096;
  for (let k = 0; k < 4096; k++) {
    const i = (start + k) % 4096;
    yield `${a}.${b}.${i >> 4}.${(i & 15) << 4}/28`;
  }
}

/** The addresses of the engine's host, refused by the proxy like private ones (a local engine only). */
export async function hostAddresses(): Promise<string[]> {
  const endpoint = currentEndpoint();
  if (!endpoint.url.startsWith('unix://')) return [];
  return Object.values(networkInterfaces())
    .flat()
    .flatMap((i) => (i && !i.internal ? [i.address] : []));
}

/**
 * Writes a sandbox's policy as the proxy sees it at once (to a new file, renamed over the old one) and
 * returns the policy files there are then, in the same exec (see forgetStalePolicies).
 */
export async function writePolicy(policy: SandboxPolicy): Promise<string[]> {
  const file = `/state/policies/${policy.network}.json`;
  const { code, stdout, stderr } = await execCapture(
    PROXY_NAME,
    [
      'sh',
      '-c',
      `mkdir -p /state/policies && cat > ${file}.tmp && mv ${file}.tmp ${file} && ls /state/policies`,
    ],
    { stdin: Readable.from([JSON.stringify(policy, null, 2)]) },
  );
  if (code !== 0)
    throw new SbxError(
      'internal',
      `Writing the egress policy of ${policy.sandbox} failed (exit ${code}): ${`${stdout}${stderr}`.trim()}`,
    );
  return stdout.split('\n').filter((f) => f.endsWith('.json'));
}

export async function readPolicy(network: string): Promise<SandboxPolicy | undefined> {
  const { code, stdout } = await execCapture(PROXY_NAME, ['cat', `/state/policies/${network}.json`]);
  return code === 0 ? (JSON.parse(stdout) as SandboxPolicy) : undefined;
}

/**
 * Whether the shared proxy has been ending (a crash or its memory limit), which cuts every sandbox's
 * open connections: a sentence for `sbx doctor` and `sbx network log`, or undefined when all is well
 * (or it was never made).
 */
export async function proxyTrouble(): Promise<string | undefined> {
  const proxy = await inspectContainer(PROXY_NAME);
  if (!proxy) return undefined;
  const state = proxy.State;
  const restarts = proxy.RestartCount ?? 0;
  if (state.Running && restarts === 0) return undefined;
  const how = state.OOMKilled ? 'it ran out of memory' : `its last exit code was ${state.ExitCode ?? '?'}`;
  return state.Running
    ? `the egress proxy ${PROXY_NAME} has restarted ${restarts} time${restarts === 1 ? '' : 's'} (${how}; up since ${state.StartedAt}): each time, every sandbox's open connections were cut. See \`docker logs ${PROXY_NAME}\`.`
    : `the egress proxy ${PROXY_NAME} is not running (${how}): sandboxes have no way out until \`sbx start\` or \`sbx run\` starts it. See \`docker logs ${PROXY_NAME}\`.`;
}

/** The decisions the proxy logged for a sandbox's network, as JSON lines. */
export async function readLog(network: string): Promise<string> {
  const proxy = await inspectContainer(PROXY_NAME);
  if (!proxy?.State.Running) return '';
  const { stdout } = await execCapture(PROXY_NAME, [
    'sh',
    '-c',
    `cat /state/log/${network}.jsonl.1 /state/log/${network}.jsonl 2>/dev/null || true`,
  ]);
  return stdout;
}

/** Follows the log: every new decision is handed to onLine until the process is interrupted. */
export async function followLog(network: string, onLine: (line: string) => void): Promise<void> {
  const { Writable } = await import('node:stream');
  let rest = '';
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) onLine(line);
      done();
    },
  });
  const { code, stderr } = await execCapture(
    PROXY_NAME,
    [
      'sh',
      '-c',
      `mkdir -p /state/log && touch /state/log/${network}.jsonl && exec tail -n +1 -F /state/log/${network}.jsonl`,
    ],
    { stdout },
  );
  if (code !== 0)
    throw new SbxError(
      'internal',
      `Following the egress proxy's log failed (exit ${code}): ${stderr.trim()}`,
    );
}

const codeArchive = (files: Array<[string, string]>) =>
  tarOf(files.map(([name, text]) => [`sbx-proxy/${name}`, text]));

export const forwarderName = (network: string) => `${network}-ports`;

/**
 * Publishes a sandbox's TCP ports through a companion container (on a network of its own, where
 * the engine publishes them, and on the sandbox's network): an internal network cannot publish
 * ports. Its own network has no other member, so only the host's connections (through that
 * network's gateway) reach it; the forwarder refuses any other source (see port-forward.ts).
 */
export async function ensureForwarder(
  network: string,
  subnet: string,
  bindings: Record<string, Array<{ HostIp: string; HostPort: string }>>,
  labels: Record<string, string>,
): Promise<void> {
  const name = forwarderName(network);
  if (await inspectContainer(name)) return;
  await ensurePortsNetwork(network, labels);
  const { files } = code();
  const id = await createContainer({
    name,
    Image: PROXY_IMAGE,
    Entrypoint: ['node', '--max-old-space-size=16', '/opt/sbx-proxy/port-forward.js'],
    Cmd: [],
    Env: [
      `SBX_FORWARD_TARGET=${SANDBOX_ALIAS}`,
      `SBX_FORWARD_PORTS=${Object.keys(bindings)
        .map((k) => k.split('/')[0])
        .join(',')}`,
    ],
    Labels: { ...labels, [LABEL.forwarder]: network },
    ExposedPorts: Object.fromEntries(Object.keys(bindings).map((k) => [k, {}])),
    HostConfig: {
      NetworkMode: name,
      PortBindings: bindings,
      ExtraHosts: [`${SANDBOX_ALIAS}:${addressIn(subnet, 'sandbox')}`],
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Sysctls: STRICT_SOURCES,
      RestartPolicy: { Name: 'unless-stopped' },
      Memory: 64 * 2 ** 20,
      PidsLimit: 64,
    },
  });
  if (!id) return; // a concurrent sbx made it
  await putArchive(id, '/opt', await codeArchive(files));
  await connectNetwork(network, id, name, addressIn(subnet, 'forwarder'));
  await startContainer(id);
}

/** The forwarder's own network (named as the forwarder), made once; a concurrent sbx's is used. */
async function ensurePortsNetwork(network: string, labels: Record<string, string>): Promise<void> {
  const name = forwarderName(network);
  if ((await listNetworks([`${LABEL.forwarder}=${network}`])).length > 0) return;
  const taken = new Set(await networkSubnets());
  try {
    await createNetwork(
      'ports',
      name,
      { ...labels, [LABEL.forwarder]: network },
      [...sandboxSubnets(name)].filter((s) => !taken.has(s)),
    );
  } catch (err) {
    if ((await listNetworks([`${LABEL.forwarder}=${network}`])).length === 0) throw err;
  }
}

/** The forwarder of a sandbox's network, when it has one. */
export const inspectForwarder = (network: string) => inspectContainer(forwarderName(network));

/** Removes a sandbox's network, port forwarder, policy and log (no sbx command could read it after). */
export async function detachSandbox(network: string): Promise<void> {
  const forwarder = await inspectForwarder(network);
  if (forwarder) await removeContainer(forwarder.Id, true);
  for (const n of await listNetworks([`${LABEL.forwarder}=${network}`])) await removeNetwork(n.name);
  await removeNetwork(network);
  const proxy = await inspectContainer(PROXY_NAME);
  if (!proxy?.State.Running) return;
  await execCapture(PROXY_NAME, [
    'rm',
    '-f',
    `/state/policies/${network}.json`,
    `/state/log/${network}.jsonl`,
    `/state/log/${network}.jsonl.1`,
  ]);
  // Rootless Podman (4.3) tears its network namespace down when a running container leaves a
  // network while no other container runs there: the proxy is then cut off from the outside. With
  // no sandbox running, restarting it (which sets the namespace up again) disturbs nobody.
  if (
    (await engineInfo()).flavour.netnsGoesWithLastNetwork &&
    !(await listContainers([`${LABEL.managed}=true`])).some((c) => c.State === 'running')
  ) {
    await stopContainer(proxy.Id, 1);
    await startContainer(proxy.Id);
  }
}

/** How old a sandbox network with no container must be to count as an orphan (see forgetOrphanNetworks). */
export const ORPHAN_AGE_MS = 20_000;

/**
 * Networks of this sandbox left when its container was removed behind sbx's back (`docker rm`):
 * their port forwarder would still hold the ports. One made in the last 20 s may be another sbx's,
 * creating the same sandbox (its container comes next): left alone.
 */
async function forgetOrphanNetworks(sandbox: string): Promise<void> {
  for (const n of await orphanNetworks([`${LABEL.network}=${sandbox}`])) await detachSandbox(n.name);
}

/**
 * Sandbox networks (carrying every given label) whose sandbox no longer exists, with their port
 * forwarder if one is left. Networks made in the last ORPHAN_AGE_MS are not listed: their sandbox may be
 * being created (its container comes after its network).
 */
export async function orphanNetworks(
  labels: string[] = [LABEL.network],
): Promise<
  Array<{ name: string; sandbox: string; forwarder: string | null; labels: Record<string, string> }>
> {
  const orphans = [];
  for (const n of await listNetworks(labels.length ? labels : [LABEL.network]))
    if (
      n.labels[LABEL.network] &&
      Date.now() - n.created > ORPHAN_AGE_MS &&
      (await listContainers([`${LABEL.network}=${n.name}`])).length === 0
    )
      orphans.push({
        name: n.name,
        sandbox: n.labels[LABEL.network]!,
        forwarder: (await inspectForwarder(n.name))?.Name.replace(/^\//, '') ?? null,
        labels: n.labels,
      });
  return orphans;
}

/**
 * Policies whose network is gone (removed behind sbx's back) would confuse a reused subnet: drop them.
 * The policies (`files`, listed when the new one was written) are listed before the networks: a
 * policy is written after its network is made, so one of a sandbox being created meanwhile by
 * another sbx has its network in the later list.
 */
async function forgetStalePolicies(proxy: string, files: string[]): Promise<void> {
  const live = new Set((await proxyNetworks()).map((n) => `${n.name}.json`));
  const stale = files.filter((f) => !live.has(f));
  if (stale.length)
    await execCapture(proxy, [
      'sh',
      '-c',
      `cd /state/policies && rm -f ${stale.map((f) => `'${f}'`).join(' ')}`,
    ]);
}

/**
 * The sandbox networks this proxy serves: those labelled with its name (networks made before the
 * label belong to the default proxy).
 */
async function proxyNetworks() {
  return (await listNetworks([LABEL.network])).filter(
    (n) => (n.labels[LABEL.proxy] ?? 'sbx-proxy') === PROXY_NAME,
  );
}

/** A tar archive of text files (for putArchive), made in memory. */
async function tarOf(files: Array<[string, string]>, mode = 0o644): Promise<Readable> {
  const { pack } = await import('tar-stream');
  const archive = pack();
  for (const [name, text] of files) archive.entry({ name, mode }, text);
  archive.finalize();
  return archive as unknown as Readable;
}
