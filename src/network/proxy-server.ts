/**
 * The filtering proxy. Runs in the `sbx-proxy` container (node, from the base template), which sits on
 * each sandbox's internal network and on an outside one; a sandbox's only way out. Decides by host
 * name (CONNECT target for HTTPS, the request's host for plain HTTP) without intercepting TLS, checks
 * every resolved address, and connects to the address it checked. Each sandbox is told apart by the
 * network the connection arrives on: its policy file names that network's subnet.
 *
 *   /state/policies/<sandbox>.json   { sandbox, subnet, mode, allow, deny, hostAddresses }
 *   /state/log/<sandbox>.jsonl       one decision per line
 *
 * For the hosts a sandbox's secrets are bound to (and only those) the proxy terminates TLS with the
 * certificate sbx issued for them, puts the secret into the request in place of its placeholder, and
 * forwards it over TLS it verifies (system CAs plus the policy's extra ones); everything else stays
 * a tunnel it never decrypts.
 *
 * Policy files are re-read when they change, so `sbx network allow|block` applies to the next request,
 * also on a connection already open, and an open tunnel the new policy refuses is closed.
 * A policy may name an upstream proxy (the host's, behind a company's explicit proxy): allowed
 * traffic then goes on through it, except to its NO_PROXY hosts.
 *
 * Everything a sandbox sends is hostile. Hosts are made canonical before any rule sees them (every
 * spelling of an address is one), the address checked is the address connected to, and the proxy
 * never connects to itself or into any sandbox network, whatever a policy says. What one sandbox
 * can take of what all share is capped: its open connections, its log's size (rotated, long names
 * cut, a flood of identical refusals summarised). A request that cannot be parsed is refused and
 * logged; nothing a sandbox sends ends the process.
 */

import { lookup, resolve4, resolve6 } from 'node:dns/promises';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
} from 'node:fs';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { connect, isIP, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import {
  createSecureContext,
  rootCertificates,
  type SecureContext,
  type TLSSocket,
  TLSSocket as TlsSocket,
  connect as tlsConnect,
} from 'node:tls';
import {
  bypassesUpstream,
  canonicalAddress,
  canonicalHost,
  DEFAULT_LIMITS,
  decideAddress,
  decideHost,
  decideRequest,
  injectHeaders,
  injectionsFor,
  injectQuery,
  type LogEntry,
  neverReached,
  requestPath,
  type SandboxPolicy,
  subnetTest,
} from './policy.js';

const STATE = process.env.SBX_PROXY_STATE ?? '/state';
const POLICIES = join(STATE, 'policies');
const LOGS = join(STATE, 'log');
const PORT = Number(process.env.SBX_PROXY_PORT ?? 3128);

let cache: { key: string; policies: SandboxPolicy[] } = { key: '', policies: [] };

/** Every sandbox's policy; re-read only when a file was added, removed or changed. */
function policies(): SandboxPolicy[] {
  let files: string[];
  try {
    files = readdirSync(POLICIES).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const stamps = files.map((f) => `${f}:${statSync(join(POLICIES, f)).mtimeMs}`);
  const key = stamps.join('|');
  if (key !== cache.key) {
    const loaded = files.flatMap((f) => {
      try {
        return [JSON.parse(readFileSync(join(POLICIES, f), 'utf8')) as SandboxPolicy];
      } catch {
        return []; // half-written: the next connection reads it again
      }
    });
    cache = { key, policies: loaded };
  }
  return cache.policies;
}

/**
 * The policy of the sandbox a connection comes from: both ends lie in its network's subnet. The
 * sandbox cannot choose either: the engine gave it its address on its own network (it has no
 * capability to change it), and the proxy never connects to itself, so no connection arrives from
 * the proxy's own address on another sandbox's network.
 */
function policyOf(socket: Socket): SandboxPolicy | undefined {
  const local = socket.localAddress ? canonicalAddress(socket.localAddress) : '';
  const remote = socket.remoteAddress ? canonicalAddress(socket.remoteAddress) : '';
  if (!local || !remote || local === remote) return undefined;
  const [inLocal, inRemote] = [subnetTest(local), subnetTest(remote)];
  return policies().find((p) => inLocal(p.subnet) && inRemote(p.subnet));
}

/** The current policy of a sandbox network (a connection keeps its network, not its policy). */
const currentPolicy = (network: string) => policies().find((p) => p.network === network);

const limitsOf = (policy: SandboxPolicy) => ({ ...DEFAULT_LIMITS, ...policy.limits });

/** Text from a sandbox as it goes into a log line: at most this long. */
const cut = (text: string, max: number) =>
  text.length > max ? `${text.slice(0, max)}…(${text.length})` : text;

/**
 * Each sandbox's log: one JSON line per decision, in /state/log/<network>.jsonl, rotated to .1 when
 * it passes its cap (so at most twice the cap on disk; the new file starts with a line saying so). A
 * run of identical refusals is written once, then summarised (`repeated`: how many more) when it
 * ends or every few seconds; past FLOOD_PER_S refusals in a second, the rest are only counted and
 * summarised every few seconds, so a flood of varied refusals cannot push the log's earlier lines
 * out quickly.
 */
interface LogState {
  bytes: number;
  last?: { key: string; entry: Omit<LogEntry, 'time'>; repeated: number; since: number } | undefined;
  second: number;
  refusals: number;
  flood: number;
  floodSince: number;
}
const logs = new Map<string, LogState>();
const SUMMARY_MS = 5_000;
const FLOOD_PER_S = 20;

function record(policy: SandboxPolicy, entry: Omit<LogEntry, 'time'>): void {
  const safe: Omit<LogEntry, 'time'> = {
    ...entry,
    method: cut(entry.method, 32),
    host: cut(entry.host, 255),
    rule: cut(entry.rule, 1024),
    ...(entry.path !== undefined ? { path: cut(entry.path, 1024) } : {}),
  };
  let state = logs.get(policy.network);
  if (!state) {
    state = { bytes: -1, second: 0, refusals: 0, flood: 0, floodSince: 0 };
    logs.set(policy.network, state);
  }
  const key = safe.allowed ? '' : `${safe.method} ${safe.host} ${safe.port} ${safe.rule}`;
  if (key && state.last?.key === key && Date.now() - state.last.since < SUMMARY_MS) {
    state.last.repeated++;
    return;
  }
  if (key) {
    const second = Math.floor(Date.now() / 1000);
    if (second !== state.second) {
      state.second = second;
      state.refusals = 0;
    }
    if (++state.refusals > FLOOD_PER_S) {
      if (state.flood++ === 0) state.floodSince = Date.now();
      return;
    }
  }
  flushRepeats(policy.network, state);
  state.last = key ? { key, entry: safe, repeated: 0, since: Date.now() } : undefined;
  write(policy, state, safe);
}

/** Writes the summary of a run of identical refusals, if it had repeats. */
function flushRepeats(network: string, state: LogState): void {
  const last = state.last;
  if (!last || last.repeated === 0) return;
  state.last = undefined;
  const policy = currentPolicy(network);
  if (policy) write(policy, state, { ...last.entry, repeated: last.repeated });
}

/** Writes the count of a flood's refusals that were not written one by one. */
function flushFlood(network: string, state: LogState): void {
  if (state.flood === 0) return;
  const policy = currentPolicy(network);
  if (policy)
    write(policy, state, {
      method: '*',
      host: '(various)',
      port: 0,
      allowed: false,
      rule: `a flood of refusals: past ${FLOOD_PER_S} a second they are counted, not written one by one`,
      repeated: state.flood,
    });
  state.flood = 0;
}

function write(policy: SandboxPolicy, state: LogState, entry: Omit<LogEntry, 'time'>): void {
  try {
    mkdirSync(LOGS, { recursive: true });
    const file = join(LOGS, `${policy.network}.jsonl`);
    if (state.bytes < 0) state.bytes = existsSync(file) ? statSync(file).size : 0;
    const stamp = () => new Date().toISOString();
    let line = `${JSON.stringify({ time: stamp(), ...entry })}\n`;
    if (state.bytes + Buffer.byteLength(line) > limitsOf(policy).logBytes && state.bytes > 0) {
      renameSync(file, `${file}.1`);
      line = `${JSON.stringify({ time: stamp(), method: '-', host: '', port: 0, allowed: false, rule: 'the log reached its cap (config proxy.logSize) and was rotated: decisions before the previous file are gone', note: true })}\n${line}`;
      state.bytes = 0;
    }
    appendFileSync(file, line);
    state.bytes += Buffer.byteLength(line);
  } catch {}
}

setInterval(() => {
  for (const [network, state] of logs) {
    if (state.last && Date.now() - state.last.since >= SUMMARY_MS) {
      flushRepeats(network, state);
      state.last = undefined;
    }
    if (state.flood > 0 && Date.now() - state.floodSince >= SUMMARY_MS) flushFlood(network, state);
    // A removed sandbox's state goes once nothing of it is left to write.
    if (!state.last && state.flood === 0 && !currentPolicy(network)) logs.delete(network);
  }
}, 1_000).unref();

/**
 * Addresses the proxy never connects to (see neverReached): its own, read from its interfaces (again
 * every second at most: it joins networks as sandboxes are made), and every sandbox network's (each
 * policy's subnet).
 */
let own = { at: 0, addresses: [] as string[] };
function forbiddenNow(): { own: string[]; subnets: string[] } {
  if (Date.now() - own.at > 1_000)
    own = {
      at: Date.now(),
      addresses: [
        '0.0.0.0',
        '::',
        ...Object.values(networkInterfaces()).flatMap((list) =>
          (list ?? []).map((a) => canonicalAddress(a.address.replace(/%.*$/, ''))),
        ),
      ],
    };
  return { own: own.addresses, subnets: policies().map((p) => p.subnet) };
}

/**
 * DNS answers kept for their TTL (at most 5 minutes), so that a sandbox's next request to a host does
 * not wait for the resolver again. The addresses are the system resolver's (getaddrinfo: /etc/hosts,
 * the container's DNS), as before; the TTL is learnt from a DNS query made beside it, which never
 * delays the answer. A name with no TTL (from /etc/hosts, or a resolver that does not say) is not
 * kept, nor is a failure. Every address is still checked against the policy on every request.
 */
const answers = new Map<string, { addresses: string[]; until: number }>();
const MAX_TTL_S = 300;

async function resolveHost(host: string): Promise<string[]> {
  const known = answers.get(host);
  if (known && known.until > Date.now()) return known.addresses;
  const addresses = (await lookup(host, { all: true })).map((a) => a.address);
  void keepFor(host, addresses);
  return addresses;
}

async function keepFor(host: string, addresses: string[]): Promise<void> {
  const asked = Date.now();
  const queries = [
    ...(addresses.some((a) => isIP(a) === 4) ? [resolve4(host, { ttl: true })] : []),
    ...(addresses.some((a) => isIP(a) === 6) ? [resolve6(host, { ttl: true })] : []),
  ];
  const ttls = (await Promise.allSettled(queries)).flatMap((r) =>
    r.status === 'fulfilled' ? r.value.map((record) => record.ttl) : [],
  );
  const ttl = Math.min(MAX_TTL_S, ...ttls);
  if (ttls.length === 0 || ttl <= 0) return;
  if (answers.size >= 1000) answers.clear();
  answers.set(host, { addresses, until: asked + ttl * 1000 });
}

/**
 * Decides on a (canonical) host and port, resolves it, checks every address (canonical, as it will be
 * connected to); returns the address to use or the refusal.
 */
async function decide(
  policy: SandboxPolicy,
  host: string,
  port: number,
): Promise<{ address: string; rule: string; explicit: boolean } | { refused: string }> {
  const byName = decideHost(policy, host, port);
  if (!byName.allowed) return { refused: byName.rule };
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await resolveHost(host)).map(canonicalAddress);
  } catch {
    // Behind a proxy that resolves names itself, a name this side cannot check goes on by name only
    // when a rule names it: otherwise an intranet name could slip past the private-address rule.
    const upstream = upstreamOf(policy, host) !== undefined;
    if (upstream && byName.explicit) return { address: host, rule: byName.rule, explicit: true };
    return {
      refused: `no such host (${host} does not resolve${upstream ? '; allow it by name to reach it through the upstream proxy' : ''})`,
    };
  }
  if (addresses.length === 0) return { refused: `no such host (${host} has no address)` };
  let rule = byName.rule;
  for (const address of addresses) {
    const check = checkAddress(policy, address, byName.explicit);
    if (!check.allowed)
      return {
        refused: isIP(host)
          ? check.rule
          : `${byName.rule}, but ${host} resolves to ${address}: ${check.rule}`,
      };
    if (check.rule !== 'public address') rule = `${byName.rule} (${check.rule})`;
  }
  return { address: addresses[0]!, rule, explicit: byName.explicit };
}

/**
 * Why the sandbox's policy as it is now refuses a decision made earlier (a change may land while a
 * decision waits on DNS or a connect, or while a connection stays open), or undefined.
 */
function refusedNow(network: string, host: string, port: number, address: string): string | undefined {
  const policy = currentPolicy(network);
  if (!policy) return 'the sandbox has no policy any more';
  const byName = decideHost(policy, host, port);
  if (!byName.allowed) return byName.rule;
  if (!isIP(address)) return undefined;
  const byAddress = checkAddress(policy, address, byName.explicit);
  return byAddress.allowed ? undefined : byAddress.rule;
}

/** The decision on an address to connect to: never the proxy or a sandbox network, then the policy's. */
function checkAddress(policy: SandboxPolicy, address: string, explicit: boolean) {
  const { own, subnets } = forbiddenNow();
  const never = neverReached(address, own, subnets);
  return never
    ? { allowed: false, rule: `${never}, never reached whatever the policy says` }
    : decideAddress(policy, address, explicit);
}

const refusal = (host: string, port: number, rule: string, sandbox: string) =>
  `sbx egress policy: ${host}:${port} refused for sandbox ${sandbox} by rule "${rule}".\n`;

function answer(socket: Socket, status: number, reason: string, body: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

const forbid = (socket: Socket, body: string) => answer(socket, 403, 'Forbidden', body);

/**
 * A CONNECT target (`host:port`, `[v6]:port`), canonical; or why it is not one. The port is required
 * (RFC 9110) and a number from 1 to 65535.
 */
function parseAuthority(target: string): { host: string; port: number } | { invalid: string } {
  const m = /^(\[[^\]]*\]|[^:[\]]*):(\d{1,5})$/.exec(target);
  if (!m) return { invalid: 'a CONNECT target is HOST:PORT' };
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return { invalid: 'the port is a number from 1 to 65535' };
  const host = canonicalHost(m[1]!);
  if (host.kind === 'invalid') return { invalid: host.reason };
  return { host: host.host, port };
}

/** The upstream proxy for a host, unless the policy has none or its NO_PROXY names the host. */
function upstreamOf(policy: SandboxPolicy, host: string): URL | undefined {
  const up = policy.upstream;
  if (!up || bypassesUpstream(up.noProxy, host)) return undefined;
  try {
    return new URL(up.url);
  } catch {
    return undefined;
  }
}

const proxyAuth = (up: URL): Record<string, string> =>
  up.username
    ? {
        'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(up.username)}:${decodeURIComponent(up.password)}`).toString('base64')}`,
      }
    : {};

/** A connection to host:port: straight to the checked address, or a tunnel through the upstream proxy. */
function open(address: string, host: string, port: number, up: URL | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (!up) {
      const socket = connect(port, address, () => resolve(socket));
      socket.once('error', reject);
      return;
    }
    const socket = connect(Number(up.port || 80), up.hostname, () => {
      const auth = Object.entries(proxyAuth(up)).map(([k, v]) => `${k}: ${v}\r\n`);
      socket.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n${auth.join('')}\r\n`);
    });
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      const status = head.subarray(0, head.indexOf('\r\n')).toString();
      if (!/^HTTP\/1\.[01] 200/.test(status)) {
        socket.destroy();
        reject(new Error(`upstream proxy ${up.host} answered "${status}"`));
        return;
      }
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.on('data', onData);
    socket.once('error', (err) => reject(new Error(`upstream proxy ${up.host}: ${err.message}`)));
  });
}

/**
 * Plain-HTTP upstream connections, kept open between requests (by address and port: the checked
 * address, or the upstream proxy's); idle ones close after 30 s.
 */
const plainAgent = new Agent({ keepAlive: true, maxFreeSockets: 16, timeout: 30_000 });

/** A plain-text answer to a request, closing its connection. */
const say = (res: ServerResponse, status: number, body: string) => {
  if (!res.headersSent) res.writeHead(status, { 'Content-Type': 'text/plain', Connection: 'close' });
  res.end(body);
};

/** Plain HTTP, in absolute form (`GET http://host/path`): decided, then sent on to the checked address. */
async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const policy = policyOf(req.socket);
  if (!policy) return say(res, 403, 'sbx proxy: this network has no sandbox policy.\n');
  const refuse = (host: string, port: number, rule: string, status = 400) => {
    record(policy, { method: req.method ?? '?', host, port, allowed: false, rule });
    say(res, status, `sbx proxy: ${rule}.\n`);
  };
  let url: URL;
  try {
    url = new URL(req.url ?? '');
  } catch {
    return refuse('', 0, 'not an absolute URL (use the proxy as HTTP_PROXY)');
  }
  if (url.protocol !== 'http:')
    return refuse(
      url.hostname,
      0,
      `${url.protocol} is not a scheme sent in the clear (https goes by CONNECT)`,
    );
  const port = Number(url.port || 80);
  const canonical = canonicalHost(url.hostname);
  if (canonical.kind === 'invalid') return refuse(url.hostname, port, `not a host: ${canonical.reason}`);
  const host = canonical.host;
  const outcome = await decide(policy, host, port);
  record(policy, {
    method: req.method ?? 'GET',
    host,
    port,
    allowed: 'address' in outcome,
    rule: 'address' in outcome ? outcome.rule : outcome.refused,
  });
  if (!('address' in outcome)) return say(res, 403, refusal(host, port, outcome.refused, policy.sandbox));
  const late = refusedNow(policy.network, host, port, outcome.address);
  if (late) return say(res, 403, refusal(host, port, late, policy.sandbox));
  const up = upstreamOf(policy, host);
  // The client's hop-by-hop headers are for this proxy: the upstream connection is the proxy's own,
  // kept alive for the next request (a client's "Connection: close" would close it every time).
  const headers = { ...req.headers };
  for (const hop of ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'upgrade'])
    delete headers[hop];
  const upstream = httpRequest(
    {
      host: up ? up.hostname : outcome.address,
      port: up ? Number(up.port || 80) : port,
      method: req.method,
      path: up ? url.href : `${url.pathname}${url.search}`,
      headers: { ...headers, host: url.host, ...(up ? proxyAuth(up) : {}) },
      setHost: false,
      agent: plainAgent,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', (err) => say(res, 502, `sbx proxy: ${url.host}: ${err.message}\n`));
  // A client gone before the answer ended: the upstream connection goes too (never back to the pool).
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

const server = createServer({ maxHeaderSize: 32 * 1024 }, (req, res) => {
  forward(req, res).catch((err: Error) => say(res, 500, `sbx proxy: ${err.message}\n`));
});

/** The system's CAs (node's own, and the image's store with the user's extra CAs) plus a policy's. */
const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const systemCas = [
  ...rootCertificates,
  ...(existsSync(SYSTEM_BUNDLE) ? [readFileSync(SYSTEM_BUNDLE, 'utf8')] : []),
];
/**
 * TLS contexts of a policy, made once (parsing ~150 CAs and a key takes tens of milliseconds): the
 * one that verifies upstreams, and the one that presents sbx's certificate to the sandbox.
 */
const contexts = new WeakMap<SandboxPolicy, { upstream: SecureContext; sandbox: SecureContext }>();
function contextsOf(policy: SandboxPolicy) {
  let found = contexts.get(policy);
  if (!found) {
    found = {
      upstream: createSecureContext({ ca: [...systemCas, ...(policy.trust ?? [])] }),
      sandbox: createSecureContext({ cert: policy.tls!.cert, key: policy.tls!.key }),
    };
    contexts.set(policy, found);
  }
  return found;
}

/** A connection whose TLS the proxy terminates: the CONNECT it came from, decided then. */
interface Terminated {
  policy: SandboxPolicy;
  host: string;
  port: number;
  address: string;
  rule: string;
}

/** TLS sessions to upstreams, resumed by the next connection (a full handshake per request costs). */
const sessions = new Map<string, Buffer>();

/**
 * Verified TLS connections to a terminated host, kept open between requests (a sandbox's client
 * usually opens a new connection per request; the upstream one need not be new). One pool per
 * policy (a changed policy file makes new ones: its trust may have changed) and host; idle
 * connections close after 30 s.
 */
const pools = new WeakMap<SandboxPolicy, Map<string, Agent>>();
function poolOf(t: Terminated): Agent {
  const byHost = pools.get(t.policy) ?? new Map<string, Agent>();
  pools.set(t.policy, byHost);
  const key = `${t.host}:${t.port} ${t.address}`;
  let agent = byHost.get(key);
  if (agent) return agent;
  agent = new Agent({ keepAlive: true, maxFreeSockets: 16, timeout: 30_000 });
  const sessionKey = `${t.policy.network} ${t.host}:${t.port}`;
  // The connection is made asynchronously (an upstream proxy's CONNECT, then TLS): node's agent
  // takes the socket through the callback when createConnection returns nothing.
  agent.createConnection = ((_options: unknown, done: (err: Error | null, socket?: Duplex) => void) => {
    let called = false;
    const once = (err: Error | null, socket?: Duplex) => {
      if (!called) done(err, socket);
      called = true;
    };
    open(t.address, t.host, t.port, upstreamOf(t.policy, t.host)).then(
      (raw) => {
        const secure = tlsConnect({
          socket: raw,
          ...(isIP(t.host) ? {} : { servername: t.host }),
          host: t.host,
          secureContext: contextsOf(t.policy).upstream,
          ...(sessions.has(sessionKey) ? { session: sessions.get(sessionKey) } : {}),
          ALPNProtocols: ['http/1.1'],
        });
        secure.on('session', (session: Buffer) => sessions.set(sessionKey, session));
        secure.on('error', (err) =>
          once(new Error(`TLS to the upstream failed verification or broke: ${err.message}`)),
        );
        secure.once('secureConnect', () => once(null, secure));
      },
      (err: Error) => once(err),
    );
    return undefined;
  }) as unknown as Agent['createConnection'];
  byHost.set(key, agent);
  return agent;
}

/**
 * The host and port a request inside a terminated connection names (its Host header, or its
 * absolute-form target), canonical; undefined when it names none.
 */
function namedTarget(
  req: IncomingMessage,
): { host: string; port: number; path: string } | { invalid: string } {
  const target = req.url ?? '/';
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return { invalid: 'the request target is not a URL' };
    }
    if (url.protocol !== 'https:') return { invalid: `${url.protocol} inside TLS` };
    const host = canonicalHost(url.hostname);
    if (host.kind === 'invalid') return { invalid: host.reason };
    return { host: host.host, port: Number(url.port || 443), path: `${url.pathname}${url.search}` };
  }
  const header = req.headers.host;
  if (header === undefined) return { invalid: 'no Host header' };
  const m = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d{1,5}))?$/.exec(header);
  const host = m ? canonicalHost(m[1]!) : undefined;
  if (!m || !host || host.kind === 'invalid') return { invalid: 'the Host header names no host' };
  return { host: host.host, port: Number(m[2] ?? 443), path: target };
}

/**
 * Requests inside the TLS the proxy terminates, each decided afresh with the sandbox's current
 * policy: it must name the host and port of its CONNECT (no other Host behind a shared front end),
 * pass the host's rules and its request rules; then secrets are put in and it is sent on over
 * verified TLS to the address checked at the CONNECT.
 */
const inner = createServer({ maxHeaderSize: 32 * 1024 }, (req: IncomingMessage, res: ServerResponse) => {
  const t = (req.socket as TLSSocket & { sbx?: Terminated }).sbx;
  if (!t) return say(res, 500, 'sbx proxy: no connection state\n');
  const policy = currentPolicy(t.policy.network);
  const method = req.method ?? 'GET';
  const named = namedTarget(req);
  const path = 'path' in named ? named.path : (req.url ?? '/');
  const log = (allowed: boolean, rule: string, injected: string[] = []) =>
    record(policy ?? t.policy, {
      method,
      host: t.host,
      port: t.port,
      path: path.split('?')[0] ?? path,
      allowed,
      rule,
      terminated: true,
      ...(injected.length > 0 ? { injected } : {}),
    });
  const refuse = (status: number, rule: string) => {
    log(false, rule);
    say(
      res,
      status,
      `sbx egress policy: ${method} ${t.host}${path.split('?')[0]} refused for sandbox ${t.policy.sandbox}: ${rule}.\n`,
    );
  };
  if (!policy) return refuse(403, 'the sandbox has no policy any more');
  if ('invalid' in named) return refuse(400, named.invalid);
  if (named.host !== t.host || named.port !== t.port)
    return refuse(
      421,
      `the request names ${named.host}:${named.port}, not ${t.host}:${t.port} of its CONNECT`,
    );
  const late = refusedNow(policy.network, t.host, t.port, t.address);
  if (late) return refuse(403, late);
  const verdict = decideRequest(policy, t.host, method, path);
  if (!verdict.allowed) return refuse(403, verdict.rule);
  const rules = verdict.rule !== 'no request rule for this host';
  const normal = requestPath(path);
  const sent = rules && 'forward' in normal ? normal.forward : path;
  const injections = injectionsFor(policy, t.host, t.port);
  const viaQuery = injectQuery(sent, injections);
  const viaHeaders = injectHeaders(req.headers, injections);
  const headers = viaHeaders.headers;
  const injected = [...new Set([...viaHeaders.injected, ...viaQuery.injected])];
  for (const hop of ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'upgrade'])
    delete headers[hop];
  log(true, rules ? verdict.rule : t.rule, injected);
  const upstream = httpRequest(
    {
      method,
      path: viaQuery.target,
      headers: { ...headers, host: t.port === 443 ? t.host : `${t.host}:${t.port}` } as Record<
        string,
        string | string[]
      >,
      setHost: false,
      agent: poolOf({ ...t, policy }),
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', (err) => say(res, 502, `sbx proxy: ${t.host}:${t.port}: ${err.message}\n`));
  // A client gone before the answer ended: the upstream connection goes too (never back to the pool).
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
});
inner.on('clientError', (_err, socket) => socket.destroy());

/** Answers a CONNECT to a host with secrets as the host itself, with sbx's certificate for it. */
function terminate(client: Socket, head: Buffer, t: Terminated): void {
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) client.unshift(head);
  const secure = new TlsSocket(client, {
    isServer: true,
    secureContext: contextsOf(t.policy).sandbox,
    ALPNProtocols: ['http/1.1'],
  }) as TLSSocket & { sbx?: Terminated };
  secure.sbx = t;
  secure.on('error', () => client.destroy());
  inner.emit('connection', secure);
}

/**
 * Open tunnels, by sandbox network: when a policy changes (`sbx network block`), each is decided
 * again and closed when the new policy refuses it.
 */
interface Tunnel {
  network: string;
  host: string;
  port: number;
  address: string;
  client: Socket;
  upstream: Socket;
}
const tunnels = new Set<Tunnel>();
let decidedWith = '';

setInterval(() => {
  policies();
  if (cache.key === decidedWith) return;
  decidedWith = cache.key;
  for (const tunnel of tunnels) {
    const refused = refusedNow(tunnel.network, tunnel.host, tunnel.port, tunnel.address);
    if (!refused) continue;
    tunnels.delete(tunnel);
    tunnel.client.destroy();
    tunnel.upstream.destroy();
    const policy = currentPolicy(tunnel.network);
    if (policy)
      record(policy, {
        method: 'CONNECT',
        host: tunnel.host,
        port: tunnel.port,
        allowed: false,
        rule: `${refused}: the open tunnel was closed`,
      });
  }
}, 500).unref();

server.on('connect', async (req: IncomingMessage, client: Socket, head: Buffer) => {
  client.on('error', () => {});
  const policy = policyOf(client);
  if (!policy) return forbid(client, 'sbx proxy: this network has no sandbox policy.\n');
  const target = parseAuthority(req.url ?? '');
  if ('invalid' in target) {
    record(policy, {
      method: 'CONNECT',
      host: req.url ?? '',
      port: 0,
      allowed: false,
      rule: `malformed CONNECT: ${target.invalid}`,
    });
    return answer(client, 400, 'Bad Request', `sbx proxy: malformed CONNECT: ${target.invalid}.\n`);
  }
  const { host, port } = target;
  const outcome = await decide(policy, host, port);
  record(policy, {
    method: 'CONNECT',
    host,
    port,
    allowed: 'address' in outcome,
    rule: 'address' in outcome ? outcome.rule : outcome.refused,
  });
  if (!('address' in outcome)) return forbid(client, refusal(host, port, outcome.refused, policy.sandbox));
  const late = refusedNow(policy.network, host, port, outcome.address);
  if (late) return forbid(client, refusal(host, port, late, policy.sandbox));
  if (injectionsFor(policy, host, port).length > 0 && policy.tls)
    return terminate(client, head, { policy, host, port, address: outcome.address, rule: outcome.rule });
  let upstream: Socket;
  try {
    upstream = await open(outcome.address, host, port, upstreamOf(policy, host));
  } catch (err) {
    if (client.writable)
      answer(client, 502, 'Bad Gateway', `sbx proxy: ${host}:${port}: ${(err as Error).message}\n`);
    return;
  }
  if (client.destroyed) return void upstream.destroy();
  // The connect may have taken long (a slow upstream): a policy change meanwhile decides.
  const later = refusedNow(policy.network, host, port, outcome.address);
  if (later) {
    upstream.destroy();
    record(policy, {
      method: 'CONNECT',
      host,
      port,
      allowed: false,
      rule: `${later} (changed while connecting)`,
    });
    return forbid(client, refusal(host, port, later, policy.sandbox));
  }
  const tunnel = { network: policy.network, host, port, address: outcome.address, client, upstream };
  tunnels.add(tunnel);
  upstream.on('error', () => client.destroy());
  // A tunnel relays TLS records as they come: Nagle's algorithm would hold a small one back until the
  // one before is acknowledged (with delayed ACKs, tens of milliseconds in a handshake).
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) upstream.write(head);
  upstream.pipe(client);
  client.pipe(upstream);
  // The upstream's end reaches the client through the pipe, after what is still buffered for it (a
  // destroy there would cut a slow client's last bytes).
  client.on('close', () => {
    tunnels.delete(tunnel);
    upstream.destroy();
  });
});

/**
 * Every connection counts against its sandbox's cap (see ProxyLimits): past it, the sandbox gets a
 * 429 naming the cap, and the others are not disturbed. A connection from no sandbox's network is
 * refused at once.
 */
const openCount = new Map<string, number>();
server.on('connection', (socket: Socket) => {
  socket.on('error', () => {});
  const policy = policyOf(socket);
  const refuse = (status: string, body: string) =>
    socket.end(
      `HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  if (!policy) return refuse('403 Forbidden', 'sbx proxy: this network has no sandbox policy.\n');
  const count = (openCount.get(policy.network) ?? 0) + 1;
  const cap = limitsOf(policy).connections;
  if (count > cap) {
    record(policy, {
      method: 'CONNECT',
      host: '',
      port: 0,
      allowed: false,
      rule: `over the sandbox's cap of ${cap} open connections through the proxy`,
    });
    return refuse(
      '429 Too Many Requests',
      `sbx proxy: sandbox ${policy.sandbox} has ${cap} connections open through the proxy, its cap (sbx config set proxy.connections N).\n`,
    );
  }
  openCount.set(policy.network, count);
  socket.once('close', () => {
    const left = (openCount.get(policy.network) ?? 1) - 1;
    if (left > 0) openCount.set(policy.network, left);
    else openCount.delete(policy.network);
  });
});

/** Requests that cannot be parsed (a bad method, an oversized header, garbage): refused and logged. */
server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
  const policy = policyOf(socket as Socket);
  if (policy)
    record(policy, {
      method: '?',
      host: '',
      port: 0,
      allowed: false,
      rule: `malformed request (${err.code ?? err.message})`,
    });
  if ((socket as Socket).writable && !(socket as Socket).destroyed) {
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }
  socket.destroy();
});
server.headersTimeout = 30_000;
// All sandboxes together: with each tunnel's buffers (at most ~64 KiB) and the heap, this fits the
// proxy's memory limit (see createProxy), so many sandboxes at their caps cannot make it run out.
server.maxConnections = 4096;
server.requestTimeout = 0;

server.listen(PORT, '0.0.0.0', () => {
  process.stdout.write(`sbx proxy listening on ${PORT}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
// Nothing a sandbox sends may end the proxy every sandbox shares: an error no handler expected is
// written to its log (`docker logs`) and the rest goes on.
process.on('uncaughtException', (err) =>
  process.stderr.write(`sbx proxy: unexpected: ${err.stack ?? err}\n`),
);
process.on('unhandledRejection', (err) => process.stderr.write(`sbx proxy: unexpected: ${String(err)}\n`));
