/**
 * Shared tools of the attack suite (test/attack/*.test.ts): the suite's own listeners (on the host's
 * bridge address, in a labelled container on Docker's default bridge, in a sandbox), the spellings an
 * attacker writes an address in, and ways to run a script inside a sandbox as its agent user and as
 * root (through sudo), plainly, in an inner `--docker` container, or in `--inner-sandbox` namespaces.
 * Every listener counts the connections it accepts: an attack holds when the count stays at zero.
 */
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { PROXY, type Result, RUN_ID, type RunOptions, sbx, TEST_LABEL } from '../helpers/cli.js';
import { docker, FITTING_LIMITS, until } from '../helpers/engine.js';

/** The gVisor pass sets SBX_RUNTIME; the Podman pass points DOCKER_HOST at Podman's socket. */
export const RUNTIME = process.env.SBX_RUNTIME?.trim() || undefined;
export const ON_PODMAN = Boolean(process.env.DOCKER_HOST?.includes('podman'));

/** The host's address on the engine's default bridge (docker0's 172.17.0.1 on a stock Docker). */
export async function bridgeGateway(): Promise<string> {
  const info = await docker.getNetwork(ON_PODMAN ? 'podman' : 'bridge').inspect();
  const config = (info.IPAM?.Config ?? []) as Array<{ Gateway?: string; Subnet?: string }>;
  const v4 = config.find((c) => c.Gateway && !c.Gateway.includes(':')) ?? config[0];
  if (v4?.Gateway) return v4.Gateway;
  const [a, b, c, d] = (v4?.Subnet ?? '172.17.0.0/16').split('/')[0]!.split('.').map(Number);
  return `${a}.${b}.${c}.${d! + 1}`;
}

/** A TCP listener of the test process, counting the connections it accepts (and closing them). */
export interface HostListener {
  address: string;
  port: number;
  hits: () => number;
  close: () => Promise<void>;
}

/**
 * Starts a counting listener in the test process on `address` (a free port). `answer` makes it
 * reply with a small HTTP 200 before closing (for the attacks that need an allowed target to work).
 */
export async function hostListener(address: string, answer = false): Promise<HostListener> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (!answer) return void socket.destroy();
    socket.once('data', () =>
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n'),
    );
  });
  server.listen(0, address);
  await once(server, 'listening');
  return {
    address,
    port: (server.address() as AddressInfo).port,
    hits: () => count,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A python3 TCP listener counting connections: one line `HIT <peer>` per connection, on stdout. */
export const COUNTING_LISTENER = (port: number) =>
  [
    'import socket,sys',
    's=socket.socket(socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET)',
    's.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)',
    'try:',
    `  s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0);s.bind(("::",${port}))`,
    'except OSError:',
    '  s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("0.0.0.0",' +
      port +
      '))',
    's.listen(512)',
    'print("LISTENING",flush=True)',
    'while True:',
    '  c,a=s.accept();print("HIT",a[0],flush=True);c.close()',
  ].join('\n');

/** A labelled container of the suite on the engine's default bridge, counting connections on `port`. */
export async function containerListener(
  port: number,
): Promise<{ id: string; ip: string; hits: () => Promise<number> }> {
  const image = (await docker.getImage('sbx/base:latest').inspect()).Id;
  const c = await docker.createContainer({
    Image: image,
    Entrypoint: ['python3', '-c', COUNTING_LISTENER(port)],
    Labels: { [TEST_LABEL]: RUN_ID },
    HostConfig: FITTING_LIMITS,
  });
  await c.start();
  const info = await c.inspect();
  const ip =
    info.NetworkSettings.IPAddress ||
    Object.values(info.NetworkSettings.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress ||
    '';
  const logs = async () => (await c.logs({ stdout: true, stderr: true })).toString();
  await until('the listener container', async () => /LISTENING/.test(await logs()), 30_000);
  return { id: c.id, ip, hits: async () => (await logs()).match(/HIT /g)?.length ?? 0 };
}

/** The sandbox's address on its own sbx network, and that network (the engine's view). */
export async function sandboxAddress(name: string): Promise<{ network: string; ip: string; subnet: string }> {
  const info = await docker.getContainer(name).inspect();
  const network = info.Config.Labels['dev.sbx.network']!;
  const ip = info.NetworkSettings.Networks[network]?.IPAddress ?? '';
  const subnet = ((await docker.getNetwork(network).inspect()).IPAM?.Config?.[0]?.Subnet as string) ?? '';
  return { network, ip, subnet };
}

/** The proxy's address on a network it joined (a sandbox's). */
export async function proxyAddressOn(network: string): Promise<string> {
  return (await docker.getContainer(PROXY).inspect()).NetworkSettings.Networks[network]?.IPAddress ?? '';
}

/** The proxy container's restart count and start time: unchanged while it has not crashed. */
export async function proxyLife(): Promise<{ restarts: number; started: string; running: boolean }> {
  const info = await docker.getContainer(PROXY).inspect();
  return { restarts: info.RestartCount, started: info.State.StartedAt, running: info.State.Running };
}

/** Every textual form of an IPv4 address an attacker may try, for a CONNECT target (host:port). */
export function connectSpellings(ip: string, port: number): string[] {
  const o = ip.split('.').map(Number);
  const n = (((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]!) >>> 0;
  const hi = ((o[0]! << 8) | o[1]!).toString(16);
  const lo = ((o[2]! << 8) | o[3]!).toString(16);
  const octal = o.map((x) => `0${x.toString(8)}`).join('.');
  return [
    `[::ffff:${hi}:${lo}]:${port}`,
    `[::ffff:${ip}]:${port}`,
    `[0:0:0:0:0:ffff:${hi}:${lo}]:${port}`,
    `[0000:0000:0000:0000:0000:FFFF:${hi.toUpperCase()}:${lo.toUpperCase()}]:${port}`,
    `[::FFFF:${hi.toUpperCase()}:${lo.toUpperCase()}]:${port}`,
    `[::${hi}:${lo}]:${port}`,
    `[::${ip}]:${port}`,
    `${n}:${port}`,
    `${octal}:${port}`,
    `0x${n.toString(16)}:${port}`,
    `${ip}.:${port}`,
  ];
}

/** The same forms as absolute-form plain-HTTP targets. */
export function absoluteSpellings(ip: string, port: number): string[] {
  return connectSpellings(ip, port).map((t) => `http://${t}/`);
}

/** The proxy's own loopback and unspecified address, spelled every way (its own port). */
export const SELF_SPELLINGS = (port: number) => [
  `[::]:${port}`,
  `[0::0]:${port}`,
  `[0:0:0:0:0:0:0:0]:${port}`,
  `[::1]:${port}`,
  `[0:0:0:0:0:0:0:1]:${port}`,
  `[0000:0000:0000:0000:0000:0000:0000:0001]:${port}`,
  `[::ffff:7f00:1]:${port}`,
  `[::ffff:127.0.0.1]:${port}`,
  `[::ffff:0:0]:${port}`,
  `0.0.0.0:${port}`,
  `0:${port}`,
  `127.1:${port}`,
  `2130706433:${port}`,
  `localhost:${port}`,
  `LOCALHOST.:${port}`,
];

/**
 * The python3 toolkit every attack script starts with: raw connections to the sandbox's proxy (PX,
 * host:port, from the proxy variables), a few request shapes, and `out`, printed as JSON at the end.
 */
export const PY_LIB = String.raw`
import json, os, socket, ssl, sys, time
_px = os.environ["PX"]
PROXY = (_px.rsplit(":", 1)[0].strip("[]"), int(_px.rsplit(":", 1)[1]))
out = {}
def conn(timeout=10):
    s = socket.create_connection(PROXY, timeout=timeout)
    return s
def head(s, limit=1 << 20):
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < limit:
        try:
            d = s.recv(65536)
        except socket.timeout:
            return buf, "timeout"
        except OSError:
            return buf, "reset"
        if not d:
            return buf, "closed"
        buf += d
    return buf, None
def status(buf, err=None):
    line = buf.split(b"\r\n", 1)[0].decode("latin1")
    parts = line.split(" ")
    if len(parts) > 1 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return err or ("garbage:" + line[:60])
def raw(data, timeout=10):
    try:
        s = conn(timeout)
        s.sendall(data)
        buf, err = head(s)
        s.close()
        return status(buf, err)
    except OSError as e:
        return "error:" + type(e).__name__
def tunnel(target):
    return raw(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
def absolute(url, host=None):
    h = host or url.split("/")[2]
    return raw(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (url, h)).encode())
def read_all(s, limit=1 << 22):
    buf = b""
    while len(buf) < limit:
        try:
            d = s.recv(65536)
        except (socket.timeout, OSError):
            break
        if not d:
            break
        buf += d
    return buf
def http_response(t, timeout=10):
    """One HTTP response on a kept-alive connection: {status, body} (body by Content-Length or chunks)."""
    t.settimeout(timeout)
    buf, err = head(t)
    if err and not buf:
        return {"status": err, "body": ""}
    h, _, body = buf.partition(b"\r\n\r\n")
    n = None
    chunked = False
    for line in h.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
        if k.strip().lower() == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    try:
        while (n is not None and len(body) < n) or (chunked and not body.endswith(b"0\r\n\r\n")) or (n is None and not chunked):
            d = t.recv(65536)
            if not d:
                break
            body += d
    except (socket.timeout, OSError):
        pass
    return {"status": status(buf, err), "body": body.decode("latin1")[:2000]}
def done():
    print(json.dumps(out))
`;

/** Where a script runs: the agent user, root through sudo; plainly, in an inner container, or in namespaces. */
export interface Runner {
  label: string;
  /** Who the attacks run as here (both unless a reason says why not, in rootSkip). */
  roles: Array<'agent' | 'root'>;
  rootSkip?: string;
  /** Runs a python3 script (PY_LIB is put before it), as the agent user or as root; returns its JSON `out`. */
  python: (script: string, root: boolean, timeoutMs?: number) => Promise<Record<string, unknown>>;
}

/** bash: PX set to the proxy's host:port from the sandbox's proxy variables (resolved to an address). */
const PX = [
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  'px=${HTTPS_PROXY:-${https_proxy:-$HTTP_PROXY}}; px=${px#http://}; px=${px%/}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  'pxh=${px%:*}; pxa=$(getent ahostsv4 "$pxh" | awk "NR==1{print \\$1}"); PX=${pxa:-$pxh}:${px##*:}',
].join('; ');

const b64 = (s: string) => Buffer.from(s).toString('base64');

function parsed(r: Result, what: string): Record<string, unknown> {
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as Record<string, unknown>;
  } catch {
    throw new Error(
      `${what}: no JSON result (exit ${r.code})\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`,
    );
  }
}

/** A script as the sandbox's agent user (`sbx exec`), and as root through `sudo`. */
export function plainRunner(name: string, options: RunOptions = {}): Runner {
  return {
    label: 'sandbox',
    roles: ['agent', 'root'],
    python: async (script, root, timeoutMs = 240_000) => {
      const file = `/tmp/attack-${Math.random().toString(36).slice(2)}.py`;
      const cmd = `${PX}; echo ${b64(`${PY_LIB + script}\ndone()\n`)} | base64 -d > ${file}; ${root ? 'sudo -n env PX="$PX"' : 'env PX="$PX"'} python3 ${file}; rc=$?; rm -f ${file}; exit $rc`;
      const r = await sbx(['exec', name, '--', 'bash', '-c', cmd], { ...options, timeoutMs });
      return parsed(r, `${name} (${root ? 'root' : 'agent'})`);
    },
  };
}

/**
 * A script in an inner container of a `--docker` sandbox: the container's own network namespace
 * behind the sandbox's, the sandbox's files (python3) mounted and entered with chroot, so the
 * script runs from the inner container's network as its root or as an unprivileged user.
 */
export function innerDockerRunner(name: string, image: string, options: RunOptions = {}): Runner {
  return {
    label: 'inner --docker container',
    roles: ['agent', 'root'],
    python: async (script, root, timeoutMs = 240_000) => {
      const file = `/tmp/attack-${Math.random().toString(36).slice(2)}.py`;
      const user = root ? '' : '--userspec=65534:65534 ';
      const cmd = `${PX}; echo ${b64(`${PY_LIB + script}\ndone()\n`)} | base64 -d > ${file}; chmod 644 ${file}; docker run --rm -e PX="$PX" -v /:/host:ro ${image} chroot ${user}/host python3 ${file}; rc=$?; rm -f ${file}; exit $rc`;
      const r = await sbx(['exec', name, '--', 'bash', '-c', cmd], { ...options, timeoutMs });
      return parsed(r, `${name} inner container (${root ? 'root' : 'user'})`);
    },
  };
}

/**
 * A script inside the namespaces an inner guard makes (bubblewrap: new user, mount and PID
 * namespaces, which the inner guard's profile allows; the network stays the sandbox's, as srt's commands keep it to reach its proxy).
 * As root: sudo, then the same namespaces.
 */
export function innerSandboxRunner(name: string, options: RunOptions = {}): Runner {
  return {
    label: '--inner-sandbox namespaces',
    roles: ['agent'],
    rootSkip:
      "as root, bubblewrap cannot map root into a user namespace without CAP_SETFCAP, which sandboxes drop (as test/e2e/inner-sandbox.test.ts says); root's attacks run from the plain sandbox",
    python: async (script, root, timeoutMs = 240_000) => {
      const file = `/tmp/attack-${Math.random().toString(36).slice(2)}.py`;
      const wrap = 'bwrap --dev-bind / / --unshare-user --unshare-pid --die-with-parent';
      const cmd = `${PX}; echo ${b64(`${PY_LIB + script}\ndone()\n`)} | base64 -d > ${file}; chmod 644 ${file}; ${root ? 'sudo -n ' : ''}env PX="$PX" ${wrap} python3 ${file}; rc=$?; rm -f ${file}; exit $rc`;
      const r = await sbx(['exec', name, '--', 'bash', '-c', cmd], { ...options, timeoutMs });
      return parsed(r, `${name} inner sandbox (${root ? 'root' : 'agent'})`);
    },
  };
}

/** The name of a sandbox made with `sbx create ... --json`. */
export async function createSandbox(args: string[], options: RunOptions = {}): Promise<string> {
  const r = await sbx(['create', ...args, '--json'], { timeoutMs: 900_000, ...options });
  if (r.code !== 0) throw new Error(`sbx create ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return (JSON.parse(r.stdout) as { name: string }).name;
}

/** A sandbox's decisions, as `sbx network log --json` gives them. */
export async function networkLog(
  name: string,
  options: RunOptions = {},
): Promise<Array<Record<string, unknown> & { host: string; allowed: boolean; rule: string; path?: string }>> {
  const r = await sbx(['network', 'log', name, '--json'], { timeoutMs: 120_000, ...options });
  if (r.code !== 0) throw new Error(`sbx network log ${name}: exit ${r.code}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}
