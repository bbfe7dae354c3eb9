import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueLeaf, makeCa } from '../../src/config/egress-ca.js';
import {
  PROXY,
  type Result,
  ROOT,
  RUN_ID,
  type RunOptions,
  sbx,
  TEST_LABEL,
  workspace,
} from '../helpers/cli.js';
import {
  cleanupTestResources,
  containersOf,
  docker,
  execIn,
  FITTING_LIMITS,
  until,
} from '../helpers/engine.js';
import { FINAL, type Recorded } from '../helpers/stand-in-api.js';

/** Folders this file made on the host (its config folder holds the test's secret store): removed at the end. */
const tempDirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
};
after(async () => {
  await cleanupTestResources();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * The suite's stand-in upstream: one HTTPS server (node, from the base image) answering every
 * request with what it received, under three names on a network of this test's own, which the
 * run's proxy joins. Its certificate comes from a test CA that sbx is told to trust (SBX_CA_CERTS);
 * it covers api and other, not bad (for the failed verification).
 */
const HOSTS = { api: 'api.secret.test', other: 'other.secret.test', bad: 'bad.secret.test' };
/** The stand-in git server (git http-backend behind HTTPS, on 443) under a bound and an unbound name. */
const GIT = { bound: 'git.secret.test', unbound: 'git2.secret.test' };
/** The stand-in model API (test/helpers/stand-in-api.ts) behind HTTPS, where Claude Code is pointed. */
const CLAUDE_HOST = 'claude.secret.test';
const PORT = 8443;
const ECHO = `const big=Buffer.alloc(1<<20);require('https').createServer({cert:process.env.C,key:process.env.K},(q,s)=>{q.resume();q.on('end',()=>{if(q.url==='/big'){let n=64;const more=()=>{while(n>0){n--;if(!s.write(big))return s.once('drain',more)}s.end()};return more()}s.setHeader('content-type','application/json');s.end(JSON.stringify({host:q.headers.host,method:q.method,url:q.url,headers:q.headers}))})}).listen(${PORT})`;

/**
 * A git server over HTTPS that wants `Basic x-access-token:$T` (401 otherwise, as GitHub does), and
 * runs `git http-backend` (CGI) for /srv/git, pushes allowed.
 */
const GIT_SERVER = `const {spawn}=require('child_process');require('https').createServer({cert:process.env.C,key:process.env.K},(q,s)=>{
if(q.headers.authorization!=='Basic '+Buffer.from('x-access-token:'+process.env.T).toString('base64')){q.resume();s.writeHead(401,{'www-authenticate':'Basic realm="git"'});return s.end('token refused\\n')}
const u=new URL(q.url,'https://x'),h=q.headers;
const g=spawn('git',['http-backend'],{env:{...process.env,GIT_PROJECT_ROOT:'/srv/git',GIT_HTTP_EXPORT_ALL:'1',REMOTE_USER:'x-access-token',PATH_INFO:u.pathname,QUERY_STRING:u.search.slice(1),REQUEST_METHOD:q.method,CONTENT_TYPE:h['content-type']||'',HTTP_CONTENT_ENCODING:h['content-encoding']||'',GIT_PROTOCOL:h['git-protocol']||'',...(h['content-length']?{CONTENT_LENGTH:h['content-length']}:{})}});
q.pipe(g.stdin);let head=Buffer.alloc(0),sent=false;
g.stdout.on('data',d=>{if(sent)return s.write(d);head=Buffer.concat([head,d]);const i=head.indexOf('\\r\\n\\r\\n');if(i<0)return;sent=true;let st=200;const o={};
for(const l of head.subarray(0,i).toString().split('\\r\\n')){const c=l.indexOf(':'),k=l.slice(0,c),v=l.slice(c+1).trim();if(k.toLowerCase()==='status')st=parseInt(v);else o[k]=v}
s.writeHead(st,o);s.write(head.subarray(i+4))});g.stdout.on('end',()=>s.end())}).listen(443)`;

/** A value nobody else could have: searched for everywhere a sandbox or a bystander can look. */
const REAL = `real-${RUN_ID}-${Math.random().toString(36).slice(2)}-value`;

const config = tempDir('sbx-secrets-config-');
/** A host file holding a value for --command to print (so the command's text holds no value). */
const valueFile = (suffix: string) => {
  const file = join(tempDir('sbx-secrets-value-'), 'value');
  writeFileSync(file, `${REAL}-${suffix}\n`, { mode: 0o600 });
  return file;
};
const trusted = tempDir('sbx-secrets-ca-');
/** Every sbx call of this file: its own config folder, the test CA trusted, a prebuilt template (no rebuild). */
const run = (args: string[], options: RunOptions = {}): Promise<Result> =>
  sbx(args, { ...options, env: { SBX_CONFIG_DIR: config, SBX_CA_CERTS: trusted, ...options.env } });
const TEMPLATE = ['--template', 'sbx/base:latest'];
const ALLOW = [HOSTS.api, HOSTS.other, HOSTS.bad, GIT.bound, GIT.unbound, CLAUDE_HOST].flatMap((h) => [
  '--allow-host',
  h,
]);

interface Echo {
  host: string;
  url: string;
  headers: Record<string, string>;
}

describe('secrets: sandboxes get placeholders, the proxy injects the values on the bound hosts only', {
  timeout: 900_000,
}, () => {
  const network = `sbx-test-${RUN_ID}-upstream`;
  let ws = '';
  let placeholder = '';
  let first: Result;
  let caCert = '';
  let gitServer = '';
  let standInIp = '';

  before(async () => {
    const ca = await makeCa('sbx test upstream CA');
    writeFileSync(join(trusted, 'test-upstream-ca.crt'), ca.cert);
    caCert = ca.cert;
    const leaf = await issueLeaf(ca, [HOSTS.api, HOSTS.other, GIT.bound, GIT.unbound, CLAUDE_HOST]);
    await docker.createNetwork({ Name: network, Labels: { [TEST_LABEL]: RUN_ID } });
    // The git server (as root, for port 443 and its repository) and the model API stand-in.
    const git = await docker.createContainer({
      Image: 'sbx/base:latest',
      User: '0',
      Entrypoint: ['sh', '-c', 'git init -q --bare /srv/git/repo.git && exec node -e "$S"'],
      Env: [`C=${leaf.cert}`, `K=${leaf.key}`, `T=${REAL}-git`, `S=${GIT_SERVER}`],
      Labels: { [TEST_LABEL]: RUN_ID },
      HostConfig: { ...FITTING_LIMITS, NetworkMode: network },
      NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: Object.values(GIT) } } },
    });
    await git.start();
    gitServer = git.id;
    const api = await docker.createContainer({
      Image: 'sbx/base:latest',
      Entrypoint: [
        'node',
        '--input-type=module',
        '-e',
        readFileSync(join(ROOT, 'dist', 'test', 'helpers', 'stand-in-api.js'), 'utf8'),
      ],
      Env: [`STANDIN_PORT=${PORT}`, `STANDIN_CERT=${leaf.cert}`, `STANDIN_KEY=${leaf.key}`],
      Labels: { [TEST_LABEL]: RUN_ID },
      HostConfig: { ...FITTING_LIMITS, NetworkMode: network },
      NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [CLAUDE_HOST] } } },
    });
    await api.start();
    standInIp = (await api.inspect()).NetworkSettings.Networks[network]!.IPAddress;
    const c = await docker.createContainer({
      Image: 'sbx/base:latest',
      Entrypoint: ['node', '-e', ECHO],
      Env: [`C=${leaf.cert}`, `K=${leaf.key}`],
      Labels: { [TEST_LABEL]: RUN_ID },
      HostConfig: { ...FITTING_LIMITS, NetworkMode: network },
      NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: Object.values(HOSTS) } } },
    });
    await c.start();
    const ip = (await c.inspect()).NetworkSettings.Networks[network]!.IPAddress;
    for (let up = false, deadline = Date.now() + 15_000; !up && Date.now() < deadline; ) {
      up = await new Promise<boolean>((resolve) => {
        const socket = connect(PORT, ip, () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      if (!up) await new Promise((r) => setTimeout(r, 200));
    }
    // The secrets: one stored from stdin (Authorization, the default), one from a command (its own header).
    const set = await run(
      ['secret', 'set', 'TEST_TOKEN', '--host', `${HOSTS.api}:${PORT}`, '--query', 'key'],
      {
        input: `${REAL}\n`,
      },
    );
    assert.equal(set.code, 0, set.stderr);
    const cmd = await run([
      'secret',
      'set',
      'CMD_KEY',
      '--host',
      `${HOSTS.api}:${PORT}`,
      '--header',
      'X-Cmd-Key',
      '--format',
      '{}',
      '--command',
      `cat ${valueFile('cmd')}`,
    ]);
    assert.equal(cmd.code, 0, cmd.stderr);
    // The first sandbox makes the run's proxy; it joins the upstream's network, where it resolves the names.
    ws = await workspace();
    const created = await run(['create', 'shell', ws, ...TEMPLATE, ...ALLOW, '--debug']);
    assert.equal(created.code, 0, created.stderr);
    await docker.getNetwork(network).connect({ Container: PROXY });
    first = created;
  });

  const echo = async (script: string): Promise<string> => {
    const r = await run(['exec', ws, '--', 'sh', '-c', script]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  it('gives the sandbox a placeholder, and the bound host the real value (replaced, or set when absent)', async () => {
    placeholder = (await echo('printf %s "$TEST_TOKEN"')).trim();
    assert.match(placeholder, /^sbx-secret-test-token-[0-9a-f]{24}$/);
    const replaced = JSON.parse(
      await echo(
        `curl -sS -H "Authorization: Bearer $TEST_TOKEN" https://${HOSTS.api}:${PORT}/v1/things?x=1`,
      ),
    ) as Echo;
    assert.equal(replaced.headers.authorization, `Bearer ${REAL}`);
    assert.equal(
      replaced.headers['x-cmd-key'],
      `${REAL}-cmd`,
      'set from the command, absent from the request',
    );
    assert.equal(replaced.url, '/v1/things?x=1');
    const query = JSON.parse(
      await echo(`curl -sS "https://${HOSTS.api}:${PORT}/q?alt=1&key=$TEST_TOKEN"`),
    ) as Echo;
    assert.equal(query.url, `/q?alt=1&key=${REAL}`, "the placeholder in the secret's query parameter too");
    const set = JSON.parse(await echo(`curl -sS -X POST -d hello https://${HOSTS.api}:${PORT}/`)) as Echo;
    assert.equal(set.headers.authorization, `Bearer ${REAL}`);
    // Python and git find sbx's CA too (requests' bundle variable, git's).
    const env = await echo(
      'printf "%s %s %s" "$REQUESTS_CA_BUNDLE" "$GIT_SSL_CAINFO" "$NODE_EXTRA_CA_CERTS"',
    );
    assert.equal(env, '/etc/ssl/certs/ca-certificates.crt '.repeat(3).trim());
    const node = await echo(
      `node -e "fetch('https://${HOSTS.api}:${PORT}/n').then(r=>r.json()).then(j=>process.stdout.write(j.headers.authorization))"`,
    );
    assert.equal(
      node,
      `Bearer ${REAL}`,
      "node's fetch, through the preloaded proxy agent, trusting sbx's CA",
    );
  });

  it('sends the placeholder as it is to any other host, whose TLS is untouched (its own issuer)', async () => {
    const other = JSON.parse(
      await echo(`curl -sS -k -H "Authorization: Bearer $TEST_TOKEN" https://${HOSTS.other}:${PORT}/`),
    ) as Echo;
    assert.equal(other.headers.authorization, `Bearer ${placeholder}`);
    assert.equal(other.headers['x-cmd-key'], undefined);
    const issuer = (host: string) =>
      echo(`curl -sS -k -v -o /dev/null https://${host}:${PORT}/ 2>&1 | grep -i 'issuer:' || true`);
    assert.match(await issuer(HOSTS.other), /sbx test upstream CA/);
    assert.match(await issuer(HOSTS.api), /sbx egress CA/);
    // Without -k: the tunnelled host's CA is not the sandbox's to trust; the terminated one verifies.
    assert.match(
      await echo(`curl -s -o /dev/null -w '%{http_code}' https://${HOSTS.other}:${PORT}/; true`),
      /^000/,
    );
  });

  it('answers 502 naming the host and the reason when the upstream fails verification', async () => {
    const bad = await run(['secret', 'set', 'BAD_TOKEN', '--host', `${HOSTS.bad}:${PORT}`], { input: 'x' });
    assert.equal(bad.code, 0, bad.stderr);
    const ws2 = await workspace();
    const made = await run(['create', 'shell', ws2, ...TEMPLATE, ...ALLOW]);
    assert.equal(made.code, 0, made.stderr);
    const r = await run([
      'exec',
      ws2,
      '--',
      'sh',
      '-c',
      `curl -sS -w '\\n%{http_code}' https://${HOSTS.bad}:${PORT}/`,
    ]);
    assert.match(
      r.stdout,
      new RegExp(`sbx proxy: ${HOSTS.bad.replaceAll('.', '\\.')}:${PORT}: TLS .*(altnames|match)`),
    );
    assert.match(r.stdout, /\n502$/);
    assert.equal((await run(['secret', 'rm', 'BAD_TOKEN'])).code, 0);
  });

  it('applies request rules on the terminated host: 403 naming the rule, logged with method and path', async () => {
    const ws6 = await workspace();
    const made = await run([
      'create',
      'shell',
      ws6,
      ...TEMPLATE,
      ...ALLOW,
      '--allow-request',
      `GET ${HOSTS.api}/allowed/**`,
      '--allow-request',
      `POST ${HOSTS.api}/v1/*/items`,
      '--allow-request',
      `GET ${HOSTS.other}/**`,
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(
      made.stderr,
      new RegExp(`request rule "GET ${HOSTS.other}/\\*\\*" names a host whose TLS sbx does not terminate`),
    );
    const status = (method: string, path: string) =>
      `curl -s -o /dev/null -w '%{http_code} ' -X ${method} https://${HOSTS.api}:${PORT}${path}`;
    const r = await run([
      'exec',
      ws6,
      '--',
      'sh',
      '-c',
      [
        status('GET', '/allowed/a/b?q=1'),
        status('POST', '/allowed/a'),
        status('POST', '/v1/x/items'),
        status('POST', '/v1/x/y/items'),
        `curl -s https://${HOSTS.api}:${PORT}/secret-stuff`,
      ].join('; '),
    ]);
    assert.equal(
      r.stdout,
      `200 403 200 403 sbx egress policy: GET ${HOSTS.api}/secret-stuff refused for sandbox ${(await containersOf(ws6))[0]!.Names[0]!.slice(1)}: no request rule allows it (rules for ${HOSTS.api}: GET ${HOSTS.api}/allowed/**; POST ${HOSTS.api}/v1/*/items).\n`,
      r.stderr,
    );
    const log = (await run(['network', 'log', ws6])).stdout;
    assert.match(
      log,
      new RegExp(
        `allowed  GET ${HOSTS.api}:${PORT}/allowed/a/b  \\(allow-request GET ${HOSTS.api}/allowed/\\*\\*\\)  injected: CMD_KEY, TEST_TOKEN`,
      ),
    );
    assert.match(
      log,
      new RegExp(`REFUSED  POST ${HOSTS.api}:${PORT}/allowed/a  \\(no request rule allows it`),
    );
    const bad = await run([
      'create',
      'shell',
      await workspace(),
      ...TEMPLATE,
      '--allow-request',
      'GET api.secret.test',
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Invalid --allow-request "GET api\.secret\.test": add the path/);
  });

  it('costs little: latency and throughput through an injecting host against a tunnelled one', async (t) => {
    // The same server under two names: one terminated and injected, one tunnelled. Figures go to the
    // test's diagnostics (and docs/secrets.md); the assertions are that every request got its value.
    const times = async (host: string) =>
      (
        await echo(
          `for i in $(seq 40); do curl -sk -o /dev/null -w '%{time_total} %{http_code}\\n' https://${host}:${PORT}/small; done`,
        )
      )
        .trim()
        .split('\n')
        .map((l) => l.split(' '));
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const injected = await times(HOSTS.api);
    const tunnelled = await times(HOSTS.other);
    assert.ok([...injected, ...tunnelled].every(([, code]) => code === '200'));
    const speed = async (host: string) =>
      Math.max(
        ...(
          await echo(
            `for i in 1 2 3; do curl -sk -o /dev/null -w '%{speed_download}\\n' https://${host}:${PORT}/big; done`,
          )
        )
          .trim()
          .split('\n')
          .map(Number),
      );
    const [fast, slow] = [await speed(HOSTS.other), await speed(HOSTS.api)];
    assert.ok(slow > 0 && fast > 0);
    const added =
      (median(injected.map(([s]) => Number(s))) - median(tunnelled.map(([s]) => Number(s)))) * 1000;
    t.diagnostic(
      `injecting host: +${added.toFixed(1)} ms median per request (new connection each, 40 requests); 64 MiB body: ${(slow / 2 ** 20).toFixed(0)} MiB/s injected, ${(fast / 2 ** 20).toFixed(0)} MiB/s tunnelled (${((100 * slow) / fast).toFixed(0)}%)`,
    );
  });

  it('keeps the value out of every place a sandbox or a bystander can look', async () => {
    const [sandbox] = await containersOf(ws);
    // Inside, as root: every process's environment, and every file that can have changed since the
    // image was built (which was before the secret existed): volumes and the workspace included.
    const inside = await run([
      'exec',
      '-u',
      '0',
      ws,
      '--',
      'sh',
      '-c',
      `cat /proc/[0-9]*/environ | tr '\\0' '\\n' | grep -c -- '${REAL}'; grep -rl -- '${REAL}' /etc /home /root /tmp /run /var /opt /usr/local /mnt /srv ${ws} 2>/dev/null | head; true`,
    ]);
    assert.equal(inside.stdout, '0\n', inside.stderr);
    const proxy = await docker.getContainer(PROXY).inspect();
    const sandboxInfo = await docker.getContainer(sandbox!.Id).inspect();
    const log = await run(['network', 'log', ws, '--json']);
    const places: Record<string, string> = {
      'docker inspect of the sandbox': JSON.stringify(sandboxInfo),
      'docker inspect of the proxy': JSON.stringify(proxy),
      'sbx inspect --json --debug': JSON.stringify(await run(['inspect', ws, '--json', '--debug'])),
      'sbx ls --json': JSON.stringify(await run(['ls', '--json', '--debug'])),
      'sbx network log': JSON.stringify(log),
      'sbx create --debug': JSON.stringify(first),
      'the secret ls': JSON.stringify(await run(['secret', 'ls', '--json'])),
    };
    for (const file of readdirSync(config, { recursive: true, encoding: 'utf8' }))
      if (file !== 'secrets.json' && !file.endsWith('/'))
        try {
          places[`config folder: ${file}`] = readFileSync(join(config, file), 'utf8');
        } catch {}
    for (const [where, text] of Object.entries(places))
      assert.ok(!text.includes(REAL), `the value shows in ${where}`);
    // The placeholder is what the sandbox's configuration holds; the log marks what was injected.
    assert.ok(JSON.stringify(sandboxInfo.Config.Env).includes(placeholder));
    const lines = JSON.parse(log.stdout) as Array<{
      host: string;
      injected?: string[];
      terminated?: boolean;
    }>;
    assert.ok(lines.some((l) => l.host === HOSTS.api && l.terminated && l.injected?.includes('TEST_TOKEN')));
    assert.ok(lines.some((l) => l.host === HOSTS.other && !l.terminated && !l.injected));
    const details = JSON.parse((await run(['inspect', ws, '--json'])).stdout) as {
      injection: { secrets: Array<{ name: string }>; terminatedHosts: string[] };
    };
    assert.deepEqual(details.injection.secrets.map((s) => s.name).sort(), ['CMD_KEY', 'TEST_TOKEN']);
    assert.deepEqual(details.injection.terminatedHosts, [`${HOSTS.api}:${PORT}`]);
    // The store is the user's alone.
    assert.equal(readdirSync(config).includes('secrets.json'), true);
  });

  it('runs --command again at each start, and a failing one starts nothing, naming the command', async () => {
    const stop = await run(['stop', ws]);
    assert.equal(stop.code, 0, stop.stderr);
    const set = await run([
      'secret',
      'set',
      'CMD_KEY',
      '--host',
      `${HOSTS.api}:${PORT}`,
      '--header',
      'X-Cmd-Key',
      '--format',
      '{}',
      '--command',
      `printf %s ${REAL}-fresh`,
    ]);
    assert.equal(set.code, 0, set.stderr);
    const start = await run(['start', ws]);
    assert.equal(start.code, 0, start.stderr);
    const fresh = JSON.parse(await echo(`curl -sS https://${HOSTS.api}:${PORT}/`)) as Echo;
    assert.equal(fresh.headers['x-cmd-key'], `${REAL}-fresh`);
    assert.equal(
      (await echo('printf %s "$TEST_TOKEN"')).trim(),
      placeholder,
      'the placeholder survives a restart',
    );

    const failing = await run([
      'secret',
      'set',
      'CMD_KEY',
      '--host',
      `${HOSTS.api}:${PORT}`,
      '--header',
      'X-Cmd-Key',
      '--format',
      '{}',
      '--command',
      'echo no token >&2; exit 3',
    ]);
    assert.equal(failing.code, 0, failing.stderr);
    const ws3 = await workspace();
    const r = await run(['run', 'shell', ws3, ...TEMPLATE, ...ALLOW, '--', 'true']);
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /`echo no token >&2; exit 3`, exited with 3: no token/);
    assert.deepEqual(await containersOf(ws3), [], 'nothing was made');
    const empty = await run([
      'secret',
      'set',
      'CMD_KEY',
      '--host',
      `${HOSTS.api}:${PORT}`,
      '--header',
      'X-Cmd-Key',
      '--format',
      '{}',
      '--command',
      'true',
    ]);
    assert.equal(empty.code, 0);
    const r2 = await run(['run', 'shell', ws3, ...TEMPLATE, ...ALLOW, '--', 'true']);
    assert.equal(r2.code, 78);
    assert.match(r2.stderr, /printed nothing/);
    assert.equal((await run(['secret', 'rm', 'CMD_KEY'])).code, 0);
  });

  it("binds an agent's API key from the host by default; config agentKeys env passes it in, with a warning", async () => {
    const key = `sk-ant-${REAL}-agent`;
    const ws4 = await workspace();
    const made = await run(
      ['create', 'claude', ws4, '--template', 'sbx/claude:latest', '--network-policy', 'deny'],
      {
        env: { ANTHROPIC_API_KEY: key },
      },
    );
    assert.equal(made.code, 0, made.stderr);
    assert.match(
      made.stderr,
      /the secret TEST_TOKEN goes to api\.secret\.test:8443, which this sandbox's network policy refuses: it will never be used/,
    );
    const seen = await run(['exec', ws4, '--', 'sh', '-c', 'printf %s "$ANTHROPIC_API_KEY"'], {
      env: { ANTHROPIC_API_KEY: key },
    });
    assert.match(seen.stdout, /^sbx-secret-anthropic-api-key-[0-9a-f]{24}$/);
    const details = JSON.parse((await run(['inspect', ws4, '--json'])).stdout) as {
      injection: { secrets: Array<{ name: string; hosts: string[]; header: string }> };
    };
    assert.ok(
      details.injection.secrets.some(
        (s) =>
          s.name === 'ANTHROPIC_API_KEY' && s.hosts.includes('api.anthropic.com') && s.header === 'x-api-key',
      ),
    );
    assert.equal((await run(['config', 'set', 'agentKeys', 'env'])).code, 0);
    try {
      const ws5 = await workspace();
      const passed = await run(['create', 'claude', ws5, '--template', 'sbx/claude:latest'], {
        env: { ANTHROPIC_API_KEY: key },
      });
      assert.equal(passed.code, 0, passed.stderr);
      assert.match(passed.stderr, /agentKeys is env, so ANTHROPIC_API_KEY is passed into the sandbox/);
      const inside = await run(['exec', ws5, '--', 'sh', '-c', 'printf %s "$ANTHROPIC_API_KEY"'], {
        env: { ANTHROPIC_API_KEY: key },
      });
      assert.equal(inside.stdout, key);
    } finally {
      await run(['config', 'unset', 'agentKeys']);
    }
  });

  it('lets git push over HTTPS with the injected token (its credential helper answers the placeholder); the placeholder alone is refused', async () => {
    const set = await run(['secret', 'set', 'REPO_TOKEN', '--host', GIT.bound, '--replace-only'], {
      input: `${REAL}-git`,
    });
    assert.equal(set.code, 0, set.stderr);
    try {
      const ws7 = await workspace();
      const made = await run(['create', 'shell', ws7, ...TEMPLATE, ...ALLOW]);
      assert.equal(made.code, 0, made.stderr);
      const push = (remote: string, ref: string, env = '') =>
        run([
          'exec',
          ws7,
          '--',
          'sh',
          '-c',
          `export GIT_TERMINAL_PROMPT=0 ${env}; cd "$(mktemp -d)" && git init -q && git -c user.name=t -c user.email=t@t.test commit -q --allow-empty -m ${ref}-${RUN_ID} && git push ${remote} HEAD:refs/heads/${ref} 2>&1`,
        ]);
      const pushed = await push(`https://${GIT.bound}/repo.git`, 'main');
      assert.equal(pushed.code, 0, pushed.stdout + pushed.stderr);
      assert.equal(
        (
          await execIn(gitServer, ['git', '-C', '/srv/git/repo.git', 'log', '-1', '--format=%s', 'main'])
        ).trim(),
        `main-${RUN_ID}`,
        'the push landed',
      );
      // The unbound name of the same server: the placeholder goes as it is (tunnelled, so the test
      // CA is not the sandbox's to trust: GIT_SSL_NO_VERIFY), and the server refuses it.
      const refused = await push(
        `https://x-access-token:$REPO_TOKEN@${GIT.unbound}/repo.git`,
        'other',
        'GIT_SSL_NO_VERIFY=1',
      );
      assert.notEqual(refused.code, 0, refused.stdout);
      assert.match(refused.stdout, /Authentication failed|401/);
      assert.match(
        await execIn(gitServer, [
          'sh',
          '-c',
          'git -C /srv/git/repo.git rev-parse --verify -q other || echo none',
        ]),
        /none/,
      );
      const log = JSON.parse((await run(['network', 'log', ws7, '--json'])).stdout) as Array<{
        host: string;
        path?: string;
        injected?: string[];
      }>;
      assert.ok(
        log.some(
          (l) =>
            l.host === GIT.bound &&
            l.path === '/repo.git/git-receive-pack' &&
            l.injected?.includes('REPO_TOKEN'),
        ),
        JSON.stringify(log),
      );
    } finally {
      await run(['secret', 'rm', 'REPO_TOKEN']);
    }
  });

  it("binds the host's GitHub token for Copilot by default; git's credential helper answers its placeholder", async () => {
    const token = `ghp_${REAL}`;
    const ws9 = await workspace();
    const made = await run(['create', 'copilot', ws9, '--template', 'sbx/copilot:latest'], {
      env: { GH_TOKEN: token },
    });
    assert.equal(made.code, 0, made.stderr);
    const inside = await run(
      [
        'exec',
        ws9,
        '--',
        'sh',
        '-c',
        'printf "%s\\n" "$GH_TOKEN"; printf "protocol=https\\nhost=github.com\\n\\n" | git credential fill; printf "protocol=https\\nhost=example.com\\n\\n" | GIT_TERMINAL_PROMPT=0 git credential fill 2>&1; true',
      ],
      { env: { GH_TOKEN: token } },
    );
    const [placeholder9] = inside.stdout.split('\n');
    assert.match(placeholder9!, /^sbx-secret-gh-token-[0-9a-f]{24}$/, inside.stdout + inside.stderr);
    assert.match(inside.stdout, new RegExp(`username=x-access-token\npassword=${placeholder9}\n`));
    assert.doesNotMatch(inside.stdout, /host=example\.com\nusername=/, 'no helper for other hosts');
    assert.ok(!inside.stdout.includes(token));
    const details = JSON.parse((await run(['inspect', ws9, '--json'])).stdout) as {
      injection: { secrets: Array<{ name: string; hosts: string[] }>; terminatedHosts: string[] };
    };
    const gh = details.injection.secrets.find((x) => x.name === 'GH_TOKEN');
    assert.ok(
      gh?.hosts.includes('github.com') && gh.hosts.includes('api.githubcopilot.com'),
      JSON.stringify(details),
    );
  });

  it('lets the real Claude Code complete a request over HTTPS with the injected key', async () => {
    const key = `sk-ant-${REAL}-claude`;
    const set = await run(
      [
        'secret',
        'set',
        'ANTHROPIC_API_KEY',
        '--host',
        `${CLAUDE_HOST}:${PORT}`,
        '--header',
        'x-api-key',
        '--format',
        '{}',
      ],
      { input: key },
    );
    assert.equal(set.code, 0, set.stderr);
    /** What the stand-in was asked, over its HTTPS (the test CA), straight from here. */
    const asked = () =>
      new Promise<Recorded[]>((resolve, reject) => {
        const req = httpsRequest(
          { host: standInIp, port: PORT, path: '/_standin/requests', ca: caCert, servername: CLAUDE_HOST },
          (res) => {
            let body = '';
            res.on('data', (d) => {
              body += d;
            });
            res.on('end', () => resolve(JSON.parse(body) as Recorded[]));
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      await until('the stand-in API', () => asked().catch(() => undefined), 15_000);
      const ws8 = await workspace();
      const r = await run(
        [
          'run',
          'claude',
          ws8,
          '--template',
          'sbx/claude:latest',
          ...ALLOW,
          '-e',
          `ANTHROPIC_BASE_URL=https://${CLAUDE_HOST}:${PORT}`,
          '-e',
          'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1',
          '--',
          '-p',
          'Write the proof file.',
        ],
        { timeoutMs: 240_000 },
      );
      const why = `claude exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
      const messages = (await asked()).filter((q) => q.url.split('?')[0]!.endsWith('/v1/messages'));
      assert.ok(messages.length > 0, `Claude Code asked the stand-in nothing: ${why}`);
      assert.ok(
        messages.every((q) => q.headers['x-api-key'] === key),
        `the stand-in saw ${JSON.stringify(messages.map((q) => q.headers['x-api-key']))}`,
      );
      assert.ok(r.stdout.includes(`${FINAL}: tool output seen.`), why);
      assert.equal(r.code, 0, why);
    } finally {
      await run(['secret', 'rm', 'ANTHROPIC_API_KEY']);
    }
  });
});

describe('secrets: bad input is refused with a hint and changes nothing', { timeout: 120_000 }, () => {
  const own = tempDir('sbx-secrets-bad-');
  const bad = (args: string[], input?: string) =>
    sbx(['secret', ...args], { env: { SBX_CONFIG_DIR: own }, ...(input === undefined ? {} : { input }) });

  it('refuses invalid names, hosts, headers, formats, sources and a second value for one header', async () => {
    assert.equal((await bad(['set', 'GOOD', '--host', 'api.example.test'], 'v')).code, 0);
    const before = readFileSync(join(own, 'secrets.json'), 'utf8');
    const cases: Array<[string[], string | undefined, number, RegExp]> = [
      [['set', '1BAD', '--host', 'a.test'], 'v', 2, /not a valid secret name/],
      [['set', 'X', '--host', 'https://a.test'], 'v', 2, /not a URL/],
      [['set', 'X', '--host', 'a.test/path'], 'v', 2, /without a path/],
      [['set', 'X', '--host', 'a.test:0'], 'v', 2, /port is a number/],
      [['set', 'X', '--host', '*'], 'v', 2, /named hosts only/],
      [['set', 'X', '--host', '*.com'], 'v', 2, /top-level domain/],
      [['set', 'X', '--host', 'a.test', '--header', 'x y'], 'v', 2, /not a header name|letters, digits/],
      [['set', 'X', '--host', 'a.test', '--header', 'Host'], 'v', 2, /belongs to the connection/],
      [['set', 'X', '--host', 'a.test', '--format', 'Bearer'], 'v', 2, /\{\} exactly once/],
      [['set', 'X', '--host', 'a.test'], '', 2, /empty/],
      [['set', 'X', '--host', 'a.test', '--from-env', 'NOT-A-VAR'], undefined, 2, /not a variable name/],
      [
        ['set', 'X', '--host', 'a.test', '--command', 'x', '--from-env', 'Y'],
        undefined,
        2,
        /cannot also be provided/,
      ],
      [['set', 'X', '--host', 'API.example.test'], 'v', 75, /GOOD already goes to api\.example\.test/],
      [['set', 'X'], 'v', 2, /Missing required flag host/],
      [['rm', 'NOPE'], undefined, 66, /no secret named NOPE/],
    ];
    for (const [args, input, code, message] of cases) {
      const r = await bad(args, input);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.match(r.stderr, /Hint: /, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.equal(readFileSync(join(own, 'secrets.json'), 'utf8'), before, 'nothing changed');
    // A store others can read is refused (its values may have leaked: rotate them), and so is a broken one.
    chmodSync(join(own, 'secrets.json'), 0o644);
    const shared = await bad(['ls']);
    assert.equal(shared.code, 78);
    assert.match(shared.stderr, /can be read by other users \(mode 644\)[\s\S]*chmod 600/);
    const doctor = await sbx(['doctor'], { env: { SBX_CONFIG_DIR: own } });
    assert.equal(doctor.code, 78, 'doctor fails on it');
    assert.match(
      doctor.stdout + doctor.stderr,
      /FAIL\s+secrets: The secret store .* can be read by other users/,
    );
    chmodSync(join(own, 'secrets.json'), 0o600);
    const ls = JSON.parse((await bad(['ls', '--json'])).stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(ls, [
      {
        name: 'GOOD',
        hosts: ['api.example.test'],
        header: 'authorization',
        format: 'Bearer {}',
        source: 'stored (stdin)',
      },
    ]);
    assert.ok(!JSON.stringify(ls).includes('"v"'));
    mkdirSync(join(own, 'broken'), { recursive: true });
    writeFileSync(join(own, 'broken', 'secrets.json'), 'not json', { mode: 0o600 });
    const broken = await sbx(['secret', 'ls'], { env: { SBX_CONFIG_DIR: join(own, 'broken') } });
    assert.equal(broken.code, 78);
    assert.match(broken.stderr, /is not valid/);
  });
});
