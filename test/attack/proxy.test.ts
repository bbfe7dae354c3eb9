/**
 * The egress proxy attacked from inside (issue 25): what a prompt-injected agent with curl, python3
 * and bash can try against the one proxy every sandbox shares. Each attack runs as the agent user
 * and as root (sudo), against the suite's own listeners only: one in this process on the host's
 * bridge address, one in another sandbox, one in a labelled container on the default bridge, and a
 * stand-in HTTPS upstream (on a network of the suite's own, which the run's proxy joins) that
 * echoes what it received, the secret's value included, and logs every request it served.
 *
 * Attacks 1-3 run from a plain sandbox, from an inner container of a `--docker` sandbox and from the
 * namespaces of an `--inner-sandbox` sandbox. SBX_RUNTIME=runsc and DOCKER_HOST=podman run the same
 * file (the lead's passes); what cannot exist there is skipped with the reason.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as netServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueLeaf, makeCa } from '../../src/config/egress-ca.js';
import {
  NO_TEST_USER,
  PROXY,
  type Result,
  RUN_ID,
  type RunOptions,
  sbx,
  TEST_LABEL,
  TEST_USER,
  workspace,
} from '../helpers/cli.js';
import { cleanupTestResources, docker, execIn, FITTING_LIMITS, until } from '../helpers/engine.js';
import {
  absoluteSpellings,
  bridgeGateway,
  COUNTING_LISTENER,
  connectSpellings,
  containerListener,
  createSandbox,
  type HostListener,
  hostListener,
  innerDockerRunner,
  innerSandboxRunner,
  networkLog,
  plainRunner,
  proxyAddressOn,
  proxyLife,
  RUNTIME,
  type Runner,
  SELF_SPELLINGS,
  sandboxAddress,
} from './helpers.js';

const tempDirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
};
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers) await close().catch(() => {});
  await cleanupTestResources();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** The stand-in upstream's names (its certificate covers both) and ports: the secrets are bound to 443 (the default port of a binding). */
const API = 'api.attack.test';
const OTHER = 'other.attack.test';
const PORT = 443;
const OTHER_PORT = 9443;
/** The victim's secret (sandbox B) and the attacker's own (the request-rule sandboxes). */
const REAL_B = `victim-${RUN_ID}-${Math.random().toString(36).slice(2)}-value`;
const REAL_C = `own-${RUN_ID}-${Math.random().toString(36).slice(2)}-value`;
/** Marks this run's identity attempts: searched for in the victim's log. */
const NONCE = Math.random().toString(36).slice(2, 10);
/** The port sandbox B's own service listens on. */
const B_PORT = 8765;
/** The port of the labelled listener container. */
const C_PORT = 8000;
/** The proxy's port inside its container. */
const PROXY_PORT = 3128;

/** An HTTPS echo on two ports: answers with what it got, and logs `REQ port host url auth` per request. */
const ECHO = `const https=require('https');for(const p of [${PORT},${OTHER_PORT}])https.createServer({cert:process.env.C,key:process.env.K},(q,s)=>{q.resume();q.on('end',()=>{console.log('REQ',p,q.headers.host,q.url,q.headers.authorization||'-');s.setHeader('content-type','application/json');s.end(JSON.stringify({port:p,host:q.headers.host,url:q.url,authorization:q.headers.authorization||null}))})}).listen(p,()=>console.log('LISTENING',p))`;

const configA = tempDir('sbx-attack-config-a-');
const configB = tempDir('sbx-attack-config-b-');
const configC = tempDir('sbx-attack-config-c-');
const trusted = tempDir('sbx-attack-ca-');
const as = (config: string, extra: RunOptions = {}): RunOptions => ({
  ...extra,
  env: { SBX_CONFIG_DIR: config, SBX_CA_CERTS: trusted, ...extra.env },
});
const TEMPLATE = ['--template', 'sbx/base:latest'];
const RUNTIME_FLAGS = RUNTIME ? ['--runtime', RUNTIME] : [];
const RULE = `GET ${API}/repos/my-org/**`;

/** The state every attack shares, made once in `before`. */
const s = {
  gateway: '',
  host: undefined as HostListener | undefined,
  hold: undefined as HostListener | undefined,
  container: { id: '', ip: '', hits: async () => 0 },
  echo: '',
  a: '',
  b: '',
  c: '',
  bNet: { network: '', ip: '', subnet: '' },
  proxyOnB: '',
};

/** The upstream's request lines (`REQ port host url auth`), without the engine's stream headers. */
const echoLog = async () =>
  (await docker.getContainer(s.echo).logs({ stdout: true, stderr: true }))
    .toString()
    .split('\n')
    .map((l) => l.slice(Math.max(0, l.search(/REQ |LISTENING /))))
    .join('\n');
const bHits = async () => {
  const r = await sbx(['exec', s.b, '--', 'sh', '-c', `grep -c HIT /tmp/b-listener.log || true`]);
  return Number(r.stdout.trim() || 0);
};
const py = (value: unknown) => JSON.stringify(JSON.stringify(value));
const WHO = ['agent', 'root'] as const;

/**
 * Attack 1: the suite's listeners in every spelling (CONNECT and absolute-form), and the proxy's own
 * loopback; returns a map spelling -> what the proxy answered.
 */
const ADDRESS_ATTACK = (targets: { connect: string[]; absolute: string[] }) => `
P = json.loads(${py(targets)})
out["connect"] = {t: tunnel(t) for t in P["connect"]}
out["absolute"] = {u: absolute(u) for u in P["absolute"]}
`;

async function addressAttack(t: { diagnostic: (m: string) => void }, runner: Runner): Promise<void> {
  const bAddr = s.bNet.ip;
  const targets = {
    connect: [
      ...connectSpellings(s.gateway, s.host!.port),
      ...connectSpellings(bAddr, B_PORT),
      ...connectSpellings(s.container.ip, C_PORT),
      ...SELF_SPELLINGS(PROXY_PORT),
    ],
    absolute: [
      ...absoluteSpellings(s.gateway, s.host!.port),
      ...absoluteSpellings(bAddr, B_PORT),
      ...absoluteSpellings(s.container.ip, C_PORT),
      ...SELF_SPELLINGS(PROXY_PORT).map((x) => `http://${x}/`),
    ],
  };
  const before = { host: s.host!.hits(), b: await bHits(), c: await s.container.hits() };
  const failures: string[] = [];
  if (runner.rootSkip) t.diagnostic(`${runner.label}: root skipped: ${runner.rootSkip}`);
  for (const who of runner.roles) {
    const out = (await runner.python(ADDRESS_ATTACK(targets), who === 'root')) as Record<
      string,
      Record<string, unknown>
    >;
    for (const kind of ['connect', 'absolute'])
      for (const [target, answer] of Object.entries(out[kind] ?? {}))
        if (answer !== 403) failures.push(`${who} ${kind} ${target} -> ${answer}`);
  }
  const hits = {
    host: s.host!.hits() - before.host,
    b: (await bHits()) - before.b,
    c: (await s.container.hits()) - before.c,
  };
  t.diagnostic(`${runner.label}: listener hits ${JSON.stringify(hits)}; not 403: ${failures.length}`);
  assert.deepEqual(
    { hits, failures },
    { hits: { host: 0, b: 0, c: 0 }, failures: [] },
    `${runner.label}: the suite's listeners were reached or the proxy did not refuse:\n${failures.join('\n')}`,
  );
}

/**
 * Attack 2: through a CONNECT to the proxy's own address on B's network, speak to the proxy as B:
 * a request to B's secret's host (does B's secret come back?) and a plain request to a host B's
 * policy refuses (does B's policy decide, naming B?).
 */
const IDENTITY_ATTACK = (targets: string[]) => `
P = json.loads(${py({ targets, api: `${API}:${PORT}`, nonce: NONCE })})
def via(target, inner):
    try:
        s = conn()
        s.sendall(("CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (target, target)).encode())
        buf, err = head(s)
        st = status(buf, err)
        if st != 200:
            s.close()
            return {"outer": st}
        return {"outer": 200, "inner": inner(s)}
    except OSError as e:
        return {"error": type(e).__name__}
def secret_host(s):
    s.sendall(("CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (P["api"], P["api"])).encode())
    buf, err = head(s)
    if status(buf, err) != 200:
        return buf.decode("latin1")[:400]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(s, server_hostname=P["api"].split(":")[0])
    t.sendall(("GET /ident-%s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (P["nonce"], P["api"])).encode())
    return http_response(t)
def refused_by_b(s):
    h = "who-%s.identity.test" % P["nonce"]
    s.sendall(("GET http://%s/ HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (h, h)).encode())
    return http_response(s)
out["secret"] = {t: via(t, secret_host) for t in P["targets"]}
out["policy"] = {t: via(t, refused_by_b) for t in P["targets"]}
`;

async function identityAttack(t: { diagnostic: (m: string) => void }, runner: Runner): Promise<void> {
  const ip = s.proxyOnB;
  const targets = [
    ...connectSpellings(ip, PROXY_PORT),
    `${PROXY}:${PROXY_PORT}`,
    `${PROXY.toUpperCase()}.:${PROXY_PORT}`,
  ];
  const before = (await networkLog(s.b, as(configB))).length;
  const outputs: string[] = [];
  const failures: string[] = [];
  if (runner.rootSkip) t.diagnostic(`${runner.label}: root skipped: ${runner.rootSkip}`);
  for (const who of runner.roles) {
    const out = await runner.python(IDENTITY_ATTACK(targets), who === 'root');
    const text = JSON.stringify(out);
    outputs.push(text);
    if (text.includes(REAL_B)) failures.push(`${who}: received B's secret value`);
    if (text.includes(s.b)) failures.push(`${who}: a refusal names sandbox B (B's policy decided)`);
    const secret = out.secret as Record<string, { outer?: unknown }>;
    for (const [target, r] of Object.entries(secret))
      if (r.outer !== 403) failures.push(`${who} CONNECT ${target} -> ${JSON.stringify(r).slice(0, 200)}`);
  }
  const log = await networkLog(s.b, as(configB));
  const marked = log.filter((d) => JSON.stringify(d).includes(NONCE));
  if (marked.length > 0) failures.push(`B's log holds ${marked.length} of the attacker's requests`);
  t.diagnostic(`${runner.label}: B's log ${before} -> ${log.length}; failures ${failures.length}`);
  assert.deepEqual(
    failures,
    [],
    `${runner.label}:\n${failures.join('\n')}\n${outputs.join('\n').slice(0, 3000)}`,
  );
  const served = (await echoLog()).split('\n').filter((l) => l.includes(NONCE) && l.includes(REAL_B));
  assert.deepEqual(served, [], "the upstream never got B's secret on the attacker's request");
}

/**
 * Attack 3: request rules decided on the raw path. Python sends the exact bytes; curl --path-as-is
 * does what a user's client would. Each path tries to leave /repos/my-org/.
 */
const PATHS = [
  '/repos/my-org/../other-org/x',
  '/repos/my-org/%2e%2e/other-org/x',
  '/repos/my-org/%2E%2E/other-org/x',
  '/repos/my-org/.%2e/other-org/x',
  '/repos/my-org/..%2fother-org',
  '/repos/my-org/..%2Fother-org/x',
  '/repos/my-org/%2e%2e%2fother-org/x',
  '/repos//my-org/../other-org/x',
  '/repos/my-org//../../other-org/x',
  '/repos/my-org/..\\other-org/x',
  '/repos/my-org/%5c..%5cother-org/x',
  '/repos/my-org/./../other-org/x',
  '/repos/my-org/x/../../other-org/x',
];
const PATH_ATTACK = `
import subprocess
P = json.loads(${py({ api: API, port: PORT, paths: PATHS })})
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def one(path):
    try:
        s = conn()
        s.sendall(("CONNECT %s:%d HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n" % (P["api"], P["port"], P["api"], P["port"])).encode())
        buf, err = head(s)
        if status(buf, err) != 200:
            return "connect:" + str(status(buf, err))
        t = ctx.wrap_socket(s, server_hostname=P["api"])
        t.sendall(("GET %s HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n" % (path, P["api"], P["port"])).encode())
        return http_response(t)["status"]
    except OSError as e:
        return "error:" + type(e).__name__
def curl(path):
    r = subprocess.run(["curl", "-sk", "--path-as-is", "-m", "20", "-x", "http://" + os.environ["PX"], "-o", "/dev/null", "-w", "%{http_code}", "https://%s:%d%s" % (P["api"], P["port"], path)], capture_output=True, text=True)
    return r.stdout
out["raw"] = {p: one(p) for p in P["paths"]}
out["curl"] = {p: curl(p) for p in P["paths"]}
out["allowed"] = one("/repos/my-org/ok")
`;

async function pathAttack(t: { diagnostic: (m: string) => void }, runner: Runner): Promise<void> {
  const failures: string[] = [];
  if (runner.rootSkip) t.diagnostic(`${runner.label}: root skipped: ${runner.rootSkip}`);
  for (const who of runner.roles) {
    const out = await runner.python(PATH_ATTACK, who === 'root');
    assert.equal(
      out.allowed,
      200,
      `${runner.label} ${who}: the allowed path itself works (${JSON.stringify(out)})`,
    );
    for (const kind of ['raw', 'curl'])
      for (const [path, answer] of Object.entries(out[kind] as Record<string, unknown>))
        if (!(typeof answer === 'number' ? answer >= 400 && answer < 500 : /^4\d\d$/.test(String(answer))))
          failures.push(`${who} ${kind} ${path} -> ${answer}`);
  }
  const served = (await echoLog()).split('\n').filter((l) => /other-org/i.test(l));
  t.diagnostic(
    `${runner.label}: upstream served ${served.length} other-org requests; not refused: ${failures.length}`,
  );
  assert.deepEqual(
    { served, failures },
    { served: [], failures: [] },
    `${runner.label}: a path outside the rule reached the upstream or was not refused`,
  );
}

describe('attack: the egress proxy holds against an agent attacking it (issue 25)', {
  timeout: 1_800_000,
}, () => {
  before(async () => {
    s.gateway = await bridgeGateway();
    s.host = await hostListener(s.gateway);
    closers.push(s.host.close);
    // A listener that keeps each connection open (the open tunnels of attacks 5 and 6).
    s.hold = await hostListener(s.gateway, true);
    closers.push(s.hold.close);
    s.container = await containerListener(C_PORT);

    const ca = await makeCa('sbx attack upstream CA');
    writeFileSync(join(trusted, 'attack-upstream-ca.crt'), ca.cert);
    const leaf = await issueLeaf(ca, [API, OTHER]);
    const network = `sbx-test-${RUN_ID}-attack-${NONCE}`;
    await docker.createNetwork({ Name: network, Labels: { [TEST_LABEL]: RUN_ID } });
    const echo = await docker.createContainer({
      Image: 'sbx/base:latest',
      User: '0',
      Entrypoint: ['node', '-e', ECHO],
      Env: [`C=${leaf.cert}`, `K=${leaf.key}`],
      Labels: { [TEST_LABEL]: RUN_ID },
      HostConfig: { ...FITTING_LIMITS, NetworkMode: network },
      NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [API, OTHER] } } },
    });
    await echo.start();
    s.echo = echo.id;
    await until('the stand-in upstream', async () => (await echoLog()).includes(`LISTENING ${OTHER_PORT}`));

    for (const [config, name, value] of [
      [configB, 'VICTIM_TOKEN', REAL_B],
      [configC, 'OWN_TOKEN', REAL_C],
    ] as const) {
      const set = await sbx(['secret', 'set', name, '--host', API], {
        ...as(config),
        input: `${value}\n`,
      });
      assert.equal(set.code, 0, set.stderr);
    }
    // A: the attacker (no secrets); B: the victim (a secret, its own policy, a service listening).
    s.a = await createSandbox(
      [
        'shell',
        await workspace(),
        ...TEMPLATE,
        ...RUNTIME_FLAGS,
        '--allow-host',
        `${s.gateway}:${s.hold.port}`,
      ],
      as(configA),
    );
    s.b = await createSandbox(
      [
        'shell',
        await workspace(),
        ...TEMPLATE,
        ...RUNTIME_FLAGS,
        '--allow-host',
        API,
        '--allow-host',
        OTHER,
        '--block-host',
        '*.identity.test',
      ],
      as(configB),
    );
    await docker.getNetwork(network).connect({ Container: PROXY });
    s.bNet = await sandboxAddress(s.b);
    s.proxyOnB = await proxyAddressOn(s.bNet.network);
    const listen = await sbx([
      'exec',
      s.b,
      '--',
      'sh',
      '-c',
      `setsid -f python3 -c '${COUNTING_LISTENER(B_PORT).replaceAll("'", `'"'"'`)}' > /tmp/b-listener.log 2>&1`,
    ]);
    assert.equal(listen.code, 0, listen.stderr);
    await until('B listens', async () =>
      /LISTENING/.test((await sbx(['exec', s.b, '--', 'cat', '/tmp/b-listener.log'])).stdout),
    );
    // C: a sandbox with its own secret and a request rule (attacks 3, 4, 5).
    s.c = await createSandbox(
      [
        'shell',
        await workspace(),
        ...TEMPLATE,
        ...RUNTIME_FLAGS,
        '--allow-host',
        API,
        '--allow-host',
        OTHER,
        '--allow-host',
        `${s.gateway}:${s.hold.port}`,
        '--allow-request',
        RULE,
      ],
      as(configC),
    );
  });

  describe('from a plain sandbox', () => {
    it('1. addresses in other spellings reach nothing of the suite, and the proxy answers 403', async (t) => {
      await addressAttack(t, plainRunner(s.a));
    });

    it("2. sandbox A cannot speak to the proxy as sandbox B: not B's secret, B's policy or B's log", async (t) => {
      await identityAttack(t, plainRunner(s.a));
    });

    it('3. request rules decide on the normalised path: no way out of /repos/my-org/', async (t) => {
      await pathAttack(t, plainRunner(s.c));
    });

    it("4. on a terminated connection another Host, a second request's Host, an absolute target or another port get no secret", async () => {
      const script = `
P = json.loads(${py({ api: API, other: OTHER, port: PORT, otherPort: OTHER_PORT })})
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def terminated(port):
    s = conn()
    s.sendall(("CONNECT %s:%d HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n" % (P["api"], port, P["api"], port)).encode())
    buf, err = head(s)
    if status(buf, err) != 200:
        raise OSError("connect %s" % status(buf, err))
    return ctx.wrap_socket(s, server_hostname=P["api"])
def response(t):
    buf, err = head(t)
    if err and not buf:
        return {"status": err, "body": ""}
    h, _, body = buf.partition(b"\\r\\n\\r\\n")
    n = 0
    for line in h.split(b"\\r\\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    while len(body) < n:
        d = t.recv(65536)
        if not d:
            break
        body += d
    return {"status": status(buf, err), "body": body.decode("latin1")[:1000]}
def ask(t, target, host):
    t.sendall(("GET %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (target, host)).encode())
    return response(t)
def attempt(f):
    try:
        return f()
    except OSError as e:
        return {"status": "error:" + str(e)}
api = "%s:%d" % (P["api"], P["port"])
out["other_host"] = attempt(lambda: ask(terminated(P["port"]), "/repos/my-org/h1", P["other"]))
out["other_host_port"] = attempt(lambda: ask(terminated(P["port"]), "/repos/my-org/h2", "%s:%d" % (P["other"], P["port"])))
def keepalive():
    t = terminated(P["port"])
    first = ask(t, "/repos/my-org/k1", api)
    second = ask(t, "/repos/my-org/k2", "%s:%d" % (P["other"], P["port"]))
    return {"first": first, "second": second}
out["keepalive"] = attempt(keepalive)
out["absolute"] = attempt(lambda: ask(terminated(P["port"]), "https://%s:%d/repos/my-org/abs" % (P["other"], P["port"]), api))
out["other_port"] = attempt(lambda: ask(terminated(P["otherPort"]), "/repos/my-org/p", "%s:%d" % (P["api"], P["otherPort"])))
`;
      const failures: string[] = [];
      for (const who of WHO) {
        const out = (await plainRunner(s.c).python(script, who === 'root')) as Record<string, unknown>;
        const text = JSON.stringify(out);
        const refused = (r: unknown) => {
          const st = (r as { status?: unknown }).status;
          return typeof st === 'number' ? st >= 400 && st < 500 : /closed|reset|error/.test(String(st));
        };
        for (const key of ['other_host', 'other_host_port', 'absolute'])
          if (!refused(out[key])) failures.push(`${who} ${key}: ${JSON.stringify(out[key])}`);
        const keep = out.keepalive as { first?: { status: unknown }; second?: unknown };
        assert.equal(
          keep.first?.status,
          200,
          `${who}: the first request to the secret's own host works: ${text}`,
        );
        if (!refused(keep.second))
          failures.push(`${who} keep-alive second Host: ${JSON.stringify(keep.second)}`);
        const port = out.other_port as { body?: string };
        if ((port.body ?? '').includes(REAL_C))
          failures.push(`${who}: the secret was injected on port ${OTHER_PORT}`);
      }
      const served = await echoLog();
      const leaked = served
        .split('\n')
        .filter((l) => l.includes(REAL_C) && (!l.startsWith(`REQ ${PORT} ${API}`) || l.includes('https://')));
      assert.deepEqual(
        { failures, leaked },
        { failures: [], leaked: [] },
        'the real secret left for another Host or port',
      );
    });

    it('5. network block reaches an open terminated connection and closes open tunnels to the blocked host', async (t) => {
      // Its own sandbox (this test blocks hosts), made like C.
      const d = await createSandbox(
        [
          'shell',
          await workspace(),
          ...TEMPLATE,
          ...RUNTIME_FLAGS,
          '--allow-host',
          API,
          '--allow-host',
          `${s.gateway}:${s.hold?.port}`,
        ],
        as(configC),
      );
      const script = (who: string) => `
P = json.loads(${py({ api: API, port: PORT, hold: `${s.gateway}:${s.hold!.port}`, who })})
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def get(t, path):
    t.sendall(("GET %s HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n" % (path, P["api"], P["port"])).encode())
    return http_response(t)["status"]
s1 = conn()
s1.sendall(("CONNECT %s:%d HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n" % (P["api"], P["port"], P["api"], P["port"])).encode())
head(s1)
t1 = ctx.wrap_socket(s1, server_hostname=P["api"])
out["before"] = get(t1, "/live-before-" + P["who"])
s2 = conn()
s2.sendall(("CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (P["hold"], P["hold"])).encode())
out["tunnel"] = status(*head(s2))
open("/tmp/live-ready-" + P["who"], "w").write("1")
# The open connection kept busy (never idle long enough for a keep-alive timeout) until the block.
# The block may land while it waits: the first refusal (or the connection closed) is the answer.
out["waiting"] = []
for _ in range(240):
    if os.path.exists("/tmp/live-go"):
        break
    try:
        st = get(t1, "/live-wait-" + P["who"])
    except OSError as e:
        out["after"] = "closed:" + type(e).__name__
        break
    out["waiting"].append(st)
    if st != 200:
        out["after"] = st
        break
    time.sleep(0.5)
out["waiting"] = sorted(set(str(x) for x in out["waiting"]))
if "after" not in out:
    try:
        out["after"] = get(t1, "/live-after-" + P["who"])
    except OSError as e:
        out["after"] = "closed:" + type(e).__name__
start = time.time()
s2.settimeout(0.5)
out["tunnel_closed_after"] = None
while time.time() - start < 10:
    try:
        dd = s2.recv(65536)
        if not dd:
            out["tunnel_closed_after"] = round(time.time() - start, 1)
            break
    except socket.timeout:
        continue
    except OSError:
        out["tunnel_closed_after"] = round(time.time() - start, 1)
        break
`;
      const runner = plainRunner(d);
      const runs = WHO.map((who) => runner.python(script(who), who === 'root'));
      for (const who of WHO)
        await until(
          `${who}'s connections open`,
          async () => (await sbx(['exec', d, '--', 'test', '-e', `/tmp/live-ready-${who}`])).code === 0,
        );
      for (const host of [API, s.gateway]) {
        const blocked = await sbx(['network', 'block', d, host], as(configC));
        assert.equal(blocked.code, 0, blocked.stderr);
      }
      assert.equal((await sbx(['exec', d, '--', 'touch', '/tmp/live-go'])).code, 0);
      const outs = await Promise.all(runs);
      t.diagnostic(JSON.stringify(outs));
      const failures: string[] = [];
      outs.forEach((out, i) => {
        const who = WHO[i]!;
        assert.equal(out.before, 200, `${who}: the terminated connection worked before the block`);
        assert.equal(out.tunnel, 200, `${who}: the tunnel was open before the block`);
        const after = out.after;
        if (!(typeof after === 'number' ? after >= 400 && after < 500 : /closed|reset/.test(String(after))))
          failures.push(`${who}: the next request on the open terminated connection got ${after}`);
        if (typeof out.tunnel_closed_after !== 'number')
          failures.push(
            `${who}: the open tunnel to the blocked host stayed open (${out.tunnel_closed_after})`,
          );
      });
      const served = (await echoLog()).split('\n').filter((l) => l.includes('/live-after-'));
      assert.deepEqual({ failures, served }, { failures: [], served: [] });
    });

    it('6a. a flood of refused requests with 15 kB names leaves a bounded, summarised log', async (t) => {
      const e = await createSandbox(
        ['shell', await workspace(), ...TEMPLATE, ...RUNTIME_FLAGS, '--block-host', '*.flood.test'],
        as(configA),
      );
      const { network } = await sandboxAddress(e);
      const script = `
name = "f" * 15000 + ".flood.test"
req = ("GET http://%s/ HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (name, "x.flood.test")).encode()
s = conn()
sent = 0
codes = {}
start = time.time()
buf = b""
while time.time() - start < 3 and sent < 200000:
    try:
        s.sendall(req)
        b, err = head(s)
        st = status(b, err)
        codes[str(st)] = codes.get(str(st), 0) + 1
        sent += 1
        if err:
            s = conn()
        else:
            h, _, body = b.partition(b"\\r\\n\\r\\n")
            n = 0
            for line in h.split(b"\\r\\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    n = int(v.strip())
            while len(body) < n:
                body += s.recv(65536)
    except OSError:
        s = conn()
out["sent"] = sent
out["codes"] = codes
`;
      const sent: unknown[] = [];
      for (const who of WHO) sent.push(await plainRunner(e).python(script, who === 'root', 120_000));
      const size = Number(
        (await execIn(PROXY, ['sh', '-c', `cat /state/log/${network}* 2>/dev/null | wc -c`])).trim(),
      );
      t.diagnostic(`flood: ${JSON.stringify(sent)}; log ${size} bytes`);
      assert.ok((sent[0] as { sent: number }).sent > 100, `the flood ran: ${JSON.stringify(sent)}`);
      assert.ok(
        size <= 10 * 1024 * 1024,
        `the sandbox's log is ${size} bytes after a 6 s flood (cap 10 MiB)`,
      );
      const log = await networkLog(e, as(configA));
      const long = log.filter((d) => d.host.length > 300);
      assert.equal(long.length, 0, `${long.length} entries keep a host name longer than 300 characters`);
      const summarised = log.some((d) =>
        Object.entries(d).some(([k, v]) => /repeat|count|times/i.test(k) && typeof v === 'number' && v > 1),
      );
      assert.ok(
        summarised,
        `the flood is summarised with a repeat count: ${JSON.stringify(log.slice(-3)).slice(0, 600)}`,
      );
    });

    it("6b. many concurrent tunnels from one sandbox: a clear refusal past a cap, the proxy stays up, another sandbox's requests complete", async (t) => {
      const life = await proxyLife();
      const tunnels = Number(process.env.SBX_ATTACK_TUNNELS ?? 2000);
      const hold = `${s.gateway}:${s.hold?.port}`;
      const script = `
import asyncio, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
except (ValueError, OSError):
    pass
out["nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
P = json.loads(${py({ hold: hold, n: tunnels })})
codes = {}
bodies = []
writers = []
async def one():
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(PROXY[0], PROXY[1]), 20)
        w.write(("CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % (P["hold"], P["hold"])).encode())
        await w.drain()
        line = await asyncio.wait_for(r.readline(), 30)
        st = status(line, "closed")
        codes[str(st)] = codes.get(str(st), 0) + 1
        if st != 200 and len(bodies) < 3:
            bodies.append((line + await asyncio.wait_for(r.read(2000), 5)).decode("latin1"))
        writers.append(w)
    except Exception as e:
        k = "error:" + type(e).__name__
        codes[k] = codes.get(k, 0) + 1
async def main():
    await asyncio.gather(*[one() for _ in range(P["n"])])
    open("/tmp/tunnels-ready", "w").write(json.dumps(codes))
    for _ in range(600):
        if os.path.exists("/tmp/tunnels-go"):
            break
        await asyncio.sleep(0.1)
    for w in writers:
        w.close()
asyncio.run(main())
out["codes"] = codes
out["bodies"] = bodies
`;
      const bystander = `
ok = 0
bad = []
for i in range(20):
    t0 = time.time()
    st = tunnel(${py(`${OTHER}:${PORT}`)}.strip('"'))
    if st == 200:
        ok += 1
    else:
        bad.append(str(st))
out["ok"] = ok
out["bad"] = bad
`;
      const results: Array<Record<string, unknown>> = [];
      for (const who of WHO) {
        await sbx(['exec', s.a, '--', 'rm', '-f', '/tmp/tunnels-ready', '/tmp/tunnels-go']);
        const flood = plainRunner(s.a).python(script, who === 'root', 300_000);
        await until(
          'the tunnels opened',
          async () => (await sbx(['exec', s.a, '--', 'test', '-e', '/tmp/tunnels-ready'])).code === 0,
          240_000,
        ).catch(() => undefined);
        // B, the bystander, meanwhile: tunnels to a host it allows.
        const b = await plainRunner(s.b)
          .python(bystander, false, 120_000)
          .catch((err: Error) => ({ error: err.message }));
        await sbx(['exec', s.a, '--', 'touch', '/tmp/tunnels-go']);
        const a = await flood.catch((err: Error) => ({ error: err.message }));
        results.push({ who, a, b });
      }
      t.diagnostic(JSON.stringify(results).slice(0, 3000));
      const now = await proxyLife();
      assert.deepEqual(now, life, 'the proxy did not restart');
      for (const r of results) {
        const b = r.b as { ok?: number };
        assert.equal(b.ok, 20, `${r.who}: B's requests completed while A flooded: ${JSON.stringify(r.b)}`);
        const codes = ((r.a as { codes?: Record<string, number> }).codes ?? {}) as Record<string, number>;
        const bodies = ((r.a as { bodies?: string[] }).bodies ?? []).join('\n');
        assert.ok(
          (codes['429'] ?? 0) + (codes['403'] ?? 0) > 0 && /limit|cap|too many/i.test(bodies),
          `${r.who}: A's tunnels past a cap are refused with 429/403 naming the cap: ${JSON.stringify(r.a).slice(0, 800)}`,
        );
      }
    });

    it('7. malformed requests are refused with 4xx or closed, logged with a reason, and never take the proxy down', async (t) => {
      const life = await proxyLife();
      const attempts = [
        `CONNECT ${OTHER} HTTP/1.1\r\nHost: ${OTHER}\r\n\r\n`,
        `CONNECT ${OTHER}: HTTP/1.1\r\nHost: x\r\n\r\n`,
        `CONNECT :443 HTTP/1.1\r\nHost: x\r\n\r\n`,
        `CONNECT ${OTHER}:99999 HTTP/1.1\r\nHost: x\r\n\r\n`,
        `CONNECT ${OTHER}:-1 HTTP/1.1\r\nHost: x\r\n\r\n`,
        `CONNECT [::ffff:ac11:1 HTTP/1.1\r\nHost: x\r\n\r\n`,
        `GET http://${'a'.repeat(70_000)}.test/ HTTP/1.1\r\nHost: x\r\n\r\n`,
        `GET ftp://${OTHER}/x HTTP/1.1\r\nHost: ${OTHER}\r\n\r\n`,
        `GET gopher://${s.gateway}:${s.host!.port}/x HTTP/1.1\r\nHost: x\r\n\r\n`,
        `BREW http://${OTHER}/ HTTP/1.1\r\nHost: ${OTHER}\r\n\r\n`,
        `GET /relative HTTP/1.1\r\nHost: ${OTHER}\r\n\r\n`,
        '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n',
        'GET\x00http://x/\r\n\r\n',
      ];
      const script = `
P = json.loads(${py(attempts)})
out["answers"] = [raw(a.encode("latin1")) for a in P]
`;
      // Refusals as the log counts them: an entry, plus the identical ones summarised after it.
      const refusals = async () =>
        (await networkLog(s.a, as(configA)))
          .filter((d) => !d.allowed)
          .reduce((n, d) => n + 1 + ((d as { repeated?: number }).repeated ?? 0), 0);
      const before = await refusals();
      const hostHits = s.host!.hits();
      const failures: string[] = [];
      for (const who of WHO) {
        const out = await plainRunner(s.a).python(script, who === 'root');
        (out.answers as unknown[]).forEach((answer, i) => {
          const ok =
            typeof answer === 'number' ? answer >= 400 && answer < 500 : /closed|reset/.test(String(answer));
          if (!ok) failures.push(`${who} ${JSON.stringify(attempts[i]!.slice(0, 60))} -> ${answer}`);
        });
      }
      assert.deepEqual(await proxyLife(), life, 'the proxy did not restart');
      // A run of identical refusals is summarised within a few seconds of its last one.
      let after = await refusals();
      for (
        const deadline = Date.now() + 10_000;
        after - before < attempts.length * 2 && Date.now() < deadline;
      ) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        after = await refusals();
      }
      t.diagnostic(`refused entries in A's log: ${before} -> ${after} for ${attempts.length * 2} attempts`);
      assert.deepEqual(failures, [], 'every malformed request is refused with 4xx or closed');
      assert.ok(
        after - before >= attempts.length * 2,
        `each malformed request is logged with a reason (${after - before} new refusals for ${attempts.length * 2})`,
      );
      assert.equal(s.host!.hits(), hostHits, 'the host listener saw nothing');
    });

    it("8. a published port answers on the host's loopback only, not to containers on the default bridge", async () => {
      const port = await new Promise<number>((resolve) => {
        const probe = netServer().listen(0, '127.0.0.1', () => {
          const p = (probe.address() as { port: number }).port;
          probe.close(() => resolve(p));
        });
      });
      const p = await createSandbox(
        ['shell', await workspace(), ...TEMPLATE, ...RUNTIME_FLAGS, '-p', `127.0.0.1:${port}:${port}`],
        as(configA),
      );
      const served = await sbx([
        'exec',
        p,
        '--',
        'sh',
        '-c',
        `echo published > /tmp/index.html; cd /tmp && setsid -f python3 -m http.server ${port} >/dev/null 2>&1`,
      ]);
      assert.equal(served.code, 0, served.stderr);
      const body = await until('the published port answers on loopback', async () =>
        fetch(`http://127.0.0.1:${port}/index.html`).then(
          (r) => r.text(),
          () => undefined,
        ),
      );
      assert.equal(body, 'published\n');
      const { network } = await sandboxAddress(p);
      const members = (await docker.getNetwork(network).inspect()).Containers ?? {};
      // The forwarder: the network's member that is neither the sandbox nor the proxy; its other addresses.
      const forwarders: string[] = [];
      for (const id of Object.keys(members)) {
        const info = await docker.getContainer(id).inspect();
        if (info.Name.slice(1) === p || info.Name.slice(1) === PROXY) continue;
        for (const [name, n] of Object.entries(info.NetworkSettings.Networks))
          if (name !== network && n.IPAddress) forwarders.push(n.IPAddress);
      }
      assert.ok(forwarders.length > 0, 'the forwarder has an address outside the sandbox network');
      const prober = await docker.createContainer({
        Image: 'sbx/base:latest',
        Entrypoint: [
          'python3',
          '-c',
          `import socket,sys
for ip in sys.argv[1:]:
    try:
        s=socket.create_connection((ip,${port}),timeout=5);s.sendall(b"GET /index.html HTTP/1.0\\r\\n\\r\\n");s.settimeout(5)
        print("REACHED" if s.recv(100) else "closed", ip)
    except Exception as e:
        print("refused", ip, type(e).__name__)`,
          ...forwarders,
        ],
        Labels: { [TEST_LABEL]: RUN_ID },
        HostConfig: FITTING_LIMITS,
      });
      await prober.start();
      await prober.wait();
      const probed = (await prober.logs({ stdout: true, stderr: true })).toString();
      assert.doesNotMatch(
        probed,
        /REACHED/,
        `a container on the default bridge reached the forwarder: ${probed}`,
      );
      const again = await fetch(`http://127.0.0.1:${port}/index.html`).then((r) => r.text());
      assert.equal(again, 'published\n', "the host's loopback still works");
    });
  });

  describe('from an inner container of a --docker sandbox', {
    skip:
      RUNTIME === 'runsc'
        ? 'sbx refuses --docker under gVisor (test/e2e/docker-inside.test.ts checks the refusal)'
        : NO_TEST_USER,
  }, () => {
    let x = '';
    let runner: Runner;
    const IMAGE = 'debian:trixie-slim';
    before(async () => {
      const ws = await workspace({ owner: TEST_USER });
      const tar = join(ws, 'image.tar');
      execFileSync('docker', ['save', IMAGE, '-o', tar]);
      chmodSync(tar, 0o644);
      chownSync(tar, TEST_USER.uid, TEST_USER.gid);
      x = await createSandbox(
        ['shell', ws, ...TEMPLATE, '--docker', '--allow-host', API, '--allow-request', RULE],
        as(configC, { timeoutMs: 900_000 }),
      );
      const loaded = await sbx(['exec', x, '--', 'docker', 'load', '-q', '-i', tar], { timeoutMs: 300_000 });
      assert.equal(loaded.code, 0, loaded.stderr);
      runner = innerDockerRunner(x, IMAGE);
    });
    it('1. addresses in other spellings', async (t) => addressAttack(t, runner));
    it('2. speaking as sandbox B', async (t) => identityAttack(t, runner));
    it('3. request rules on the normalised path', async (t) => pathAttack(t, runner));
  });

  describe('from the namespaces of an --inner-sandbox sandbox', { skip: NO_TEST_USER }, () => {
    let y = '';
    let runner: Runner;
    let problem: string | undefined;
    before(async () => {
      const ws = await workspace({ owner: TEST_USER });
      y = await createSandbox(
        [
          'shell',
          ws,
          '--inner-sandbox',
          ...TEMPLATE,
          ...RUNTIME_FLAGS,
          '--allow-host',
          API,
          '--allow-request',
          RULE,
        ],
        as(configC),
      );
      runner = innerSandboxRunner(y);
      const r: Result = await sbx([
        'exec',
        y,
        '--',
        'bash',
        '-c',
        'bwrap --dev-bind / / --unshare-user --unshare-pid --die-with-parent true 2>&1',
      ]);
      problem = r.code === 0 ? undefined : `bubblewrap does not start in this sandbox: ${r.stdout.trim()}`;
      if (!RUNTIME) assert.equal(problem, undefined, 'bubblewrap runs under runc');
    });
    it('1. addresses in other spellings', async (t) => {
      if (problem) return t.skip(problem);
      await addressAttack(t, runner);
    });
    it('2. speaking as sandbox B', async (t) => {
      if (problem) return t.skip(problem);
      await identityAttack(t, runner);
    });
    it('3. request rules on the normalised path', async (t) => {
      if (problem) return t.skip(problem);
      await pathAttack(t, runner);
    });
  });
});
