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
 * Policy files are re-read when they change, so `sbx network allow|block` applies to the next request.
 * A policy may name an upstream proxy (the host's, behind a company's explicit proxy): allowed
 * traffic then goes on through it, except to its NO_PROXY hosts.
 */

import { lookup, resolve4, resolve6 } from 'node:dns/promises';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { connect, isIP, type Socket } from 'node:net';
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
  decideAddress,
  decideHost,
  decideRequest,
  type Injection,
  injectHeaders,
  injectionsFor,
  injectQuery,
  inSubnet,
  type LogEntry,
  type SandboxPolicy,
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

/** The policy of the sandbox a connection comes from: both ends lie in its network's subnet. */
function policyOf(socket: Socket): SandboxPolicy | undefined {
  const local = socket.localAddress?.replace(/^::ffff:/, '') ?? '';
  const remote = socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
  return policies().find((p) => inSubnet(local, p.subnet) && inSubnet(remote, p.subnet));
}

function record(policy: SandboxPolicy, entry: Omit<LogEntry, 'time'>): void {
  try {
    mkdirSync(LOGS, { recursive: true });
    appendFileSync(
      join(LOGS, `${policy.network}.jsonl`),
      `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`,
    );
  } catch {}
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

/** Decides on a host and port, resolves it, checks every address; returns the address to use or the refusal. */
async function decide(
  policy: SandboxPolicy,
  host: string,
  port: number,
): Promise<{ address: string; rule: string } | { refused: string }> {
  const byName = decideHost(policy, host, port);
  if (!byName.allowed) return { refused: byName.rule };
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : await resolveHost(host);
  } catch {
    // Behind a proxy that resolves names itself, a name this side cannot check goes on by name only
    // when a rule names it: otherwise an intranet name could slip past the private-address rule.
    const upstream = upstreamOf(policy, host) !== undefined;
    if (upstream && byName.explicit) return { address: host, rule: byName.rule };
    return {
      refused: `no such host (${host} does not resolve${upstream ? '; allow it by name to reach it through the upstream proxy' : ''})`,
    };
  }
  for (const address of addresses) {
    const check = decideAddress(policy, address, byName.explicit);
    if (!check.allowed)
      return {
        refused: isIP(host)
          ? check.rule
          : `${byName.rule}, but ${host} resolves to ${address}: ${check.rule}`,
      };
  }
  return { address: addresses[0]!, rule: byName.rule };
}

const refusal = (host: string, port: number, rule: string, sandbox: string) =>
  `sbx egress policy: ${host}:${port} refused for sandbox ${sandbox} by rule "${rule}".\n`;

function answer(socket: Socket, status: number, reason: string, body: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

const forbid = (socket: Socket, body: string) => answer(socket, 403, 'Forbidden', body);

function splitHostPort(target: string, defaultPort: number): [string, number] {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(target);
  if (v6) return [v6[1]!, Number(v6[2] ?? defaultPort)];
  const [host = '', port] = target.split(':');
  return [host, Number(port ?? defaultPort)];
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

const server = createServer(async (req: IncomingMessage, res) => {
  const policy = policyOf(req.socket);
  let url: URL;
  try {
    url = new URL(req.url ?? '');
  } catch {
    res
      .writeHead(400, { 'Content-Type': 'text/plain' })
      .end('sbx proxy: send absolute URLs (use it as HTTP_PROXY).\n');
    return;
  }
  if (!policy) {
    res
      .writeHead(403, { 'Content-Type': 'text/plain' })
      .end('sbx proxy: this network has no sandbox policy.\n');
    return;
  }
  const port = Number(url.port || 80);
  const outcome = await decide(policy, url.hostname, port);
  record(policy, {
    method: req.method ?? 'GET',
    host: url.hostname,
    port,
    allowed: 'address' in outcome,
    rule: 'address' in outcome ? outcome.rule : outcome.refused,
  });
  if (!('address' in outcome)) {
    res
      .writeHead(403, { 'Content-Type': 'text/plain' })
      .end(refusal(url.hostname, port, outcome.refused, policy.sandbox));
    return;
  }
  const up = upstreamOf(policy, url.hostname);
  // The client's hop-by-hop headers are for this proxy: the upstream connection is the proxy's own,
  // kept alive for the next request (a client's "Connection: close" would close it every time).
  const headers = { ...req.headers };
  for (const hop of ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization'])
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
  upstream.on('error', (err) => {
    if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(`sbx proxy: ${url.host}: ${err.message}\n`);
  });
  // A client gone before the answer ended: the upstream connection goes too (never back to the pool).
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
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

interface Terminated {
  policy: SandboxPolicy;
  host: string;
  port: number;
  address: string;
  rule: string;
  injections: Injection[];
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

/** Requests inside the TLS the proxy terminates: secrets put in, then sent on over verified TLS. */
const inner = createServer((req: IncomingMessage, res: ServerResponse) => {
  const t = (req.socket as TLSSocket & { sbx?: Terminated }).sbx;
  if (!t) return void res.writeHead(500).end();
  const path = req.url ?? '/';
  const verdict = decideRequest(t.policy, t.host, req.method ?? 'GET', path);
  if (!verdict.allowed) {
    record(t.policy, {
      method: req.method ?? 'GET',
      host: t.host,
      port: t.port,
      path: path.split('?')[0] ?? path,
      allowed: false,
      rule: verdict.rule,
      terminated: true,
    });
    res
      .writeHead(403, { 'Content-Type': 'text/plain' })
      .end(
        `sbx egress policy: ${req.method} ${t.host}${path.split('?')[0]} refused for sandbox ${t.policy.sandbox}: ${verdict.rule}.\n`,
      );
    return;
  }
  const viaQuery = injectQuery(path, t.injections);
  const viaHeaders = injectHeaders(req.headers, t.injections);
  const headers = viaHeaders.headers;
  const injected = [...new Set([...viaHeaders.injected, ...viaQuery.injected])];
  for (const hop of ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization'])
    delete headers[hop];
  record(t.policy, {
    method: req.method ?? 'GET',
    host: t.host,
    port: t.port,
    path: path.split('?')[0] ?? path,
    allowed: true,
    rule: verdict.rule === 'no request rule for this host' ? t.rule : verdict.rule,
    terminated: true,
    ...(injected.length > 0 ? { injected } : {}),
  });
  const fail = (reason: string) => {
    if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(`sbx proxy: ${t.host}:${t.port}: ${reason}\n`);
  };
  const upstream = httpRequest(
    {
      method: req.method,
      path: viaQuery.target,
      headers: {
        ...headers,
        host: String(headers.host ?? (t.port === 443 ? t.host : `${t.host}:${t.port}`)),
      } as Record<string, string | string[]>,
      setHost: false,
      agent: poolOf(t),
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', (err) => fail(err.message));
  // A client gone before the answer ended: the upstream connection goes too (never back to the pool).
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
});

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

server.on('connect', async (req: IncomingMessage, client: Socket, head: Buffer) => {
  client.on('error', () => {});
  const policy = policyOf(client);
  const [host, port] = splitHostPort(req.url ?? '', 443);
  if (!policy) return forbid(client, 'sbx proxy: this network has no sandbox policy.\n');
  const outcome = await decide(policy, host, port);
  record(policy, {
    method: 'CONNECT',
    host,
    port,
    allowed: 'address' in outcome,
    rule: 'address' in outcome ? outcome.rule : outcome.refused,
  });
  if (!('address' in outcome)) return forbid(client, refusal(host, port, outcome.refused, policy.sandbox));
  const injections = injectionsFor(policy, host);
  if (injections.length > 0 && policy.tls)
    return terminate(client, head, {
      policy,
      host,
      port,
      address: outcome.address,
      rule: outcome.rule,
      injections,
    });
  let upstream: Socket;
  try {
    upstream = await open(outcome.address, host, port, upstreamOf(policy, host));
  } catch (err) {
    if (client.writable)
      answer(client, 502, 'Bad Gateway', `sbx proxy: ${host}:${port}: ${(err as Error).message}\n`);
    return;
  }
  upstream.on('error', () => client.destroy());
  // A tunnel relays TLS records as they come: Nagle's algorithm would hold a small one back until the
  // one before is acknowledged (with delayed ACKs, tens of milliseconds in a handshake).
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) upstream.write(head);
  upstream.pipe(client);
  client.pipe(upstream);
  client.on('close', () => upstream.destroy());
});

server.listen(PORT, '0.0.0.0', () => {
  process.stdout.write(`sbx proxy listening on ${PORT}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
