import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { ORPHAN_AGE_MS } from '../../src/network/proxy.js';
import { sandboxName } from '../../src/sandbox/identity.js';
import {
  BIN,
  PROXY,
  REGISTRY_PING,
  type Result,
  ROOT,
  RUN_ID,
  sbx,
  TEST_LABEL,
  workspace,
} from '../helpers/cli.js';
import { cleanupTestResources, containersOf, docker } from '../helpers/engine.js';

/** The Podman pass of test/run.sh (DOCKER_HOST at Podman's socket). */
const onPodman = Boolean(process.env.DOCKER_HOST?.includes('podman'));

after(() => cleanupTestResources());

const json = <T>(r: Result): T => {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
};

interface Listed {
  id: string;
  name: string;
  state: string;
  workspace: string;
  default: boolean;
  ports: Array<{ hostIp: string; hostPort: number; boundPort?: number; containerPort: number }>;
  limits: { cpus: number; memory: number; pidsLimit: number };
}

const listed = async (): Promise<Listed[]> => json<Listed[]>(await sbx(['ls', '--json']));

const validateList = new Ajv2020({ validateFormats: false }).compile(
  JSON.parse(readFileSync(join(ROOT, 'schema', 'sandbox-list.schema.json'), 'utf8')),
);

/** Sandboxes on this engine that this test run did not make (a developer's own, say). */
const foreignSandboxes = async () =>
  (await docker.listContainers({ all: true, filters: { label: ['dev.sbx.managed=true'] } })).filter(
    (c) => c.Labels[TEST_LABEL] !== RUN_ID,
  );

describe('sbx create, ls, inspect, rm', { timeout: 600_000 }, () => {
  it('create makes the sandbox without an agent; ls --json matches its schema; rm leaves the files', async () => {
    const ws = await workspace();
    writeFileSync(join(ws, 'keep.txt'), 'mine');
    const created = json<{ name: string; id: string; created: boolean }>(
      await sbx(['create', 'shell', ws, '--json']),
    );
    assert.equal(created.created, true);
    const again = json<{ id: string; created: boolean }>(
      await sbx(['create', 'shell', '--json'], { cwd: ws }),
    );
    assert.deepEqual([again.id, again.created], [created.id, false], 'create is idempotent');
    const top = await docker.getContainer(created.id).top();
    assert.ok(
      !(top.Processes as string[][]).some((p) => /bash -l/.test(p.join(' '))),
      'no agent was launched by create',
    );

    const list = await listed();
    assert.ok(validateList(list), JSON.stringify(validateList.errors));
    const mine = list.find((s) => s.workspace === ws)!;
    assert.equal(mine.name, created.name);
    assert.equal(mine.state, 'running');
    assert.equal(mine.default, true);

    const table = (await sbx(['ls'])).stdout;
    assert.match(table, /^SANDBOX\s+AGENT\s+STATUS\s+WORKSPACE\s+BRANCH\s+TEMPLATE\s+CREATED/);
    assert.ok(table.includes(ws));
    assert.ok(
      (await sbx(['ls', '-q', '--agent', 'shell', '--status', 'running'])).stdout
        .split('\n')
        .includes(mine.name),
    );
    assert.ok(!(await sbx(['ls', '-q', '--status', 'stopped'])).stdout.split('\n').includes(mine.name));

    const refused = await sbx(['rm', '.'], { cwd: ws });
    assert.equal(refused.code, 75, refused.stderr);
    assert.match(refused.stderr, /is running/);
    assert.equal((await containersOf(ws)).length, 1, 'a refused rm changes nothing');

    const removed = json<{ done: string[] }>(await sbx(['rm', '-f', created.id.slice(0, 12), '--json']));
    assert.deepEqual(removed.done, [created.name]);
    assert.equal((await containersOf(ws)).length, 0);
    assert.equal(readFileSync(join(ws, 'keep.txt'), 'utf8'), 'mine');
  });

  it('--name makes a second sandbox on a workspace; a path names the default one, a name the other', async () => {
    const ws = await workspace();
    const main = json<{ name: string }>(await sbx(['create', 'shell', '--json'], { cwd: ws }));
    const second = json<{ name: string; id: string }>(
      await sbx(['create', 'shell', '--name', `review-${RUN_ID}`, '--json'], { cwd: ws }),
    );
    assert.equal(second.name, `review-${RUN_ID}`);
    assert.equal((await containersOf(ws)).length, 2);
    const hostname = await sbx(['run', 'shell', '--name', second.name, '--', 'hostname'], { cwd: ws });
    assert.equal(hostname.stdout.trim(), second.id.slice(0, 12), 'run --name attaches to the named one');
    const byPath = json<{ name: string }>(await sbx(['inspect', '.', '--json'], { cwd: ws }));
    assert.equal(byPath.name, main.name);
    const byName = json<{ name: string; default: boolean }>(await sbx(['inspect', second.name, '--json']));
    assert.deepEqual([byName.name, byName.default], [second.name, false]);

    const other = await workspace();
    const taken = await sbx(['create', 'shell', '--name', second.name], { cwd: other });
    assert.equal(taken.code, 75, taken.stderr);
    assert.match(taken.stderr, /belongs to the workspace/);
    const bad = await sbx(['create', 'shell', '--name', 'no spaces'], { cwd: other });
    assert.equal(bad.code, 2, bad.stderr);
    assert.equal((await containersOf(other)).length, 0);
  });

  it('an ambiguous id prefix is an error listing the matches', async () => {
    const ws = await workspace();
    const ids: string[] = [];
    let prefix: string | undefined;
    // Sixteen first hex digits: by the 17th sandbox two share one (usually after 4 or 5).
    for (let i = 0; i < 17 && !prefix; i++) {
      ids.push(
        json<{ id: string }>(
          await sbx(['create', 'shell', '--name', `amb${i}-${RUN_ID}`, '--json'], { cwd: ws }),
        ).id,
      );
      prefix = ids.map((id) => id[0]!).find((c, j, all) => all.indexOf(c) !== j);
    }
    const all = (await listed()).filter((s) => s.id.startsWith(prefix!));
    const r = await sbx(['inspect', prefix!]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`matches ${all.length} sandboxes`));
    for (const s of all) assert.ok(r.stderr.includes(s.name));
  });

  it('inspect shows the template hash, mapping, mounts, git identity, and variable names but never values', async () => {
    const ws = await workspace();
    const secret = `s3cret-${RUN_ID}-${Date.now()}`;
    const r = await sbx(['run', 'shell', '-e', `MY_TOKEN=${secret}`, '--', 'printenv', 'MY_TOKEN'], {
      cwd: ws,
    });
    assert.equal(r.stdout.trim(), secret, 'the process gets the value');
    const out = await sbx(['inspect', '--json', '--debug'], { cwd: ws });
    assert.ok(!out.stdout.includes(secret) && !out.stderr.includes(secret));
    const d = json<{
      templateHash: string;
      image: string;
      workspace: string;
      user: { uid: number };
      git: { name: string; email: string };
      mounts: Array<{ source: string; destination: string }>;
      envNames: string[];
      limits: { pidsLimit: number };
    }>(out);
    assert.equal(d.workspace, ws);
    assert.match(d.templateHash, /^[0-9a-f]{64}$/);
    assert.equal(d.image.split(':')[1], d.templateHash.slice(0, 12));
    assert.equal(d.user.uid, 0);
    assert.deepEqual(d.git, { name: 'Ada Tester', email: 'ada@example.test' });
    assert.ok(d.mounts.some((m) => m.source === ws && m.destination === ws));
    assert.ok(d.envNames.includes('SBX_UID') && !d.envNames.includes('MY_TOKEN'));
    assert.equal(d.limits.pidsLimit, 4096);
    const text = await sbx(['inspect'], { cwd: ws });
    assert.match(text.stdout, /Content hash:\s+[0-9a-f]{64}/);
    assert.match(text.stdout, /Git identity:\s+Ada Tester <ada@example.test>/);
  });
});

describe('sbx stop, start, exec, shell', { timeout: 600_000 }, () => {
  it('stop and start by name and path; several at once report each, exit non-zero on any failure', async () => {
    const ws = await workspace();
    const { name, id } = json<{ name: string; id: string }>(
      await sbx(['create', 'shell', '--json'], { cwd: ws }),
    );
    const stopped = await sbx(['stop', name, 'no-such-sandbox']);
    assert.equal(stopped.code, 66, stopped.stderr);
    assert.equal(stopped.stdout.trim(), name);
    assert.match(stopped.stderr, /no-such-sandbox: No sandbox named/);
    assert.equal((await docker.getContainer(id).inspect()).State.Running, false);
    assert.ok((await sbx(['ls', '-q', '--status', 'stopped'])).stdout.split('\n').includes(name));
    const started = await sbx(['start', '.'], { cwd: ws });
    assert.equal(started.code, 0, started.stderr);
    assert.equal((await docker.getContainer(id).inspect()).State.Running, true);
    const twice = await sbx(['start', name]);
    assert.equal(twice.code, 0, 'starting a running sandbox is fine');
    const usage = await sbx(['stop']);
    assert.equal(usage.code, 2, usage.stderr);
  });

  it('exec: exit codes, -u, -w, -e, -i, and -t without a terminal is refused; a stopped sandbox is started', async () => {
    const ws = await workspace();
    const { name } = json<{ name: string }>(await sbx(['create', 'shell', '--json'], { cwd: ws }));
    assert.equal((await sbx(['exec', name, '--', 'sh', '-c', 'exit 7'])).code, 7);
    const who = await sbx([
      'exec',
      '-u',
      '1000',
      '-w',
      '/tmp',
      '-e',
      'GREETING=hi',
      name,
      '--',
      'sh',
      '-c',
      'id -u; pwd; echo $GREETING',
    ]);
    assert.equal(who.stdout, '1000\n/tmp\nhi\n', who.stderr);
    const here = await sbx(['exec', '.', '--', 'pwd'], { cwd: ws });
    assert.equal(here.stdout, `${ws}\n`);
    const withInput = await sbx(['exec', '-i', name, '--', 'cat'], { input: 'piped\n' });
    assert.equal(withInput.stdout, 'piped\n');
    const withoutInput = await sbx(['exec', name, '--', 'cat'], { input: 'ignored\n' });
    assert.equal(withoutInput.stdout, '', 'without -i the command gets no input');
    const tty = await sbx(['exec', '-t', name, '--', 'true']);
    assert.equal(tty.code, 2, tty.stderr);
    assert.match(tty.stderr, /needs a terminal/);
    await sbx(['stop', name]);
    const revived = await sbx(['exec', name, '--', 'echo', 'up']);
    assert.equal(revived.stdout, 'up\n', revived.stderr);
  });

  it("shell opens a login shell in the current workspace's sandbox", async () => {
    const ws = await workspace();
    await sbx(['create', 'shell'], { cwd: ws });
    const r = await sbx(['shell'], { cwd: ws, input: 'shopt -q login_shell && echo login; pwd\n' });
    assert.equal(r.stdout, `login\n${ws}\n`, r.stderr);
    const none = await sbx(['shell'], { cwd: await workspace() });
    assert.equal(none.code, 66, none.stderr);
    assert.match(none.stderr, /has no sandbox/);
  });
});

describe('ports, limits and run -d', { timeout: 600_000 }, () => {
  it('run -d starts the agent in the background; its published port answers on loopback', async () => {
    const ws = await workspace();
    writeFileSync(join(ws, 'index.html'), 'served from the sandbox');
    const r = await sbx(
      ['run', 'shell', '-d', '-p', '0:8000', '--', 'python3', '-m', 'http.server', '8000'],
      { cwd: ws },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /runs in the background/);
    const ports = json<Array<{ hostIp: string; hostPort: number; boundPort: number; containerPort: number }>>(
      await sbx(['ports', '--json'], { cwd: ws }),
    );
    assert.equal(ports.length, 1);
    assert.equal(ports[0]!.hostIp, '127.0.0.1', 'published on loopback only by default');
    assert.equal(ports[0]!.hostPort, 0);
    assert.ok(ports[0]!.boundPort > 0);
    assert.match(
      (await sbx(['ports'], { cwd: ws })).stdout,
      new RegExp(`^8000/tcp -> 127\\.0\\.0\\.1:${ports[0]!.boundPort}\\n$`),
    );
    let body = '';
    for (const deadline = Date.now() + 20_000; !body && Date.now() < deadline; ) {
      body = await fetch(`http://127.0.0.1:${ports[0]!.boundPort}/index.html`)
        .then((res) => res.text())
        .catch(() => '');
      if (!body) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(body, 'served from the sandbox');
    const listedPorts = (await listed()).find((s) => s.workspace === ws)!.ports;
    assert.equal(listedPorts[0]!.boundPort, ports[0]!.boundPort);
    const inspected = json<{ ports: unknown }>(await sbx(['inspect', '--json'], { cwd: ws }));
    assert.deepEqual(inspected.ports, ports);

    const twice = await sbx(['run', 'shell', '-d', '--', 'sleep', '1'], { cwd: ws });
    assert.equal(twice.code, 75, twice.stderr);
    assert.match(twice.stderr, /already runs in the background/);
    const otherPort = await sbx(['run', 'shell', '-p', '9000:9000', '--', 'true'], { cwd: ws });
    assert.equal(otherPort.code, 75, otherPort.stderr);
    assert.match(otherPort.stderr, /without the port 9000\/tcp/);
  });

  it('limits from flags, then config, then defaults, as the engine sees them', async () => {
    const info = await docker.info();
    const ws = await workspace();
    const { id } = json<{ id: string }>(
      await sbx(['create', 'shell', '--cpus', '1', '--memory', '512m', '--pids-limit', '300', '--json'], {
        cwd: ws,
      }),
    );
    const host = (await docker.getContainer(id).inspect()).HostConfig;
    assert.deepEqual([host.NanoCpus, host.Memory, host.PidsLimit], [1e9, 512 * 2 ** 20, 300]);
    const listedLimits = (await listed()).find((s) => s.id === id)!.limits;
    assert.deepEqual(listedLimits, { cpus: 1, memory: 512 * 2 ** 20, pidsLimit: 300 });
    const inspected = await docker.getContainer(id).inspect();
    if (inspected.HostConfig.Runtime === 'runsc') {
      // gVisor shows no cgroup files inside: the limit holds on the whole sandbox, in the host's cgroup.
      const pids = readFileSync(`/proc/${inspected.State.Pid}/cgroup`, 'utf8').match(
        /^\d+:(?:pids)?:(.+)$/m,
      )!;
      const max = ['pids', ''].map((c) => join('/sys/fs/cgroup', c, pids[1]!, 'pids.max')).find(existsSync)!;
      assert.equal(readFileSync(max, 'utf8').trim(), '300', 'the limit holds on the gVisor sandbox');
    } else {
      const fork = await sbx(
        ['exec', id.slice(0, 12), '--', 'cat', '/sys/fs/cgroup/pids/pids.max', '/sys/fs/cgroup/pids.max'],
        {},
      );
      assert.match(fork.stdout, /^300$/m, 'the limit holds inside');
    }

    const defaults = json<{ id: string }>(
      await sbx(['create', 'shell', '--json'], { cwd: await workspace() }),
    );
    const d = (await docker.getContainer(defaults.id).inspect()).HostConfig;
    assert.equal(d.PidsLimit, 4096);
    assert.equal(d.Memory, Math.floor((info.MemTotal * 0.8) / 2 ** 20) * 2 ** 20);
    assert.ok(!d.NanoCpus);

    const configDir = mkdtempSync(join(tmpdir(), 'sbx-cfg-'));
    assert.equal(
      (await sbx(['config', 'set', 'limits.pidsLimit', '1000'], { env: { SBX_CONFIG_DIR: configDir } })).code,
      0,
    );
    assert.equal(
      (await sbx(['config', 'set', 'limits.memory', '0'], { env: { SBX_CONFIG_DIR: configDir } })).code,
      0,
    );
    const configured = json<{ id: string }>(
      await sbx(['create', 'shell', '--json'], {
        cwd: await workspace(),
        env: { SBX_CONFIG_DIR: configDir },
      }),
    );
    const c = (await docker.getContainer(configured.id).inspect()).HostConfig;
    assert.deepEqual([c.PidsLimit, c.Memory], [1000, 0]);

    const tooMany = await workspace();
    const refused = await sbx(['create', 'shell', '--cpus', String(info.NCPU + 1)], { cwd: tooMany });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /more than the engine's/);
    const bad = await sbx(['create', 'shell', '--memory', 'lots'], { cwd: tooMany });
    assert.equal(bad.code, 2, bad.stderr);
    assert.equal((await containersOf(tooMany)).length, 0);
  });
});

describe('sbx config', { timeout: 120_000 }, () => {
  it('sets, gets, lists and unsets checked values; refuses unknown keys and bad values', async () => {
    const env = { SBX_CONFIG_DIR: mkdtempSync(join(tmpdir(), 'sbx-cfg-')) };
    const file = (await sbx(['config', 'path'], { env })).stdout.trim();
    assert.equal(file, join(env.SBX_CONFIG_DIR, 'config.json'));
    assert.equal((await sbx(['config', 'set', 'ports', '0:3000', '127.0.0.1:8080:80'], { env })).code, 0);
    assert.equal((await sbx(['config', 'set', 'limits.cpus', '1.5'], { env })).code, 0);
    assert.deepEqual(json(await sbx(['config', 'get', 'ports', '--json'], { env })), [
      '0:3000',
      '127.0.0.1:8080:80',
    ]);
    assert.equal((await sbx(['config', 'get', 'limits.cpus'], { env })).stdout, '1.5\n');
    assert.equal((await sbx(['config', 'get', 'limits.memory'], { env })).stdout, '');
    const entries = json<Array<{ key: string; value: unknown }>>(
      await sbx(['config', 'list', '--json'], { env }),
    );
    assert.equal(entries.find((e) => e.key === 'limits.cpus')?.value, 1.5);
    const before = readFileSync(file, 'utf8');

    const unknown = await sbx(['config', 'set', 'limits.gpu', '1'], { env });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown configuration key "limits.gpu"[\s\S]*Valid keys: .*limits\.cpus/);
    const badValue = await sbx(['config', 'set', 'limits.memory', 'lots'], { env });
    assert.equal(badValue.code, 2);
    assert.match(badValue.stderr, /limits\.memory: Invalid memory limit "lots"[\s\S]*Hint: Give a size/);
    const badPort = await sbx(['config', 'set', 'ports', '3000:3000', 'x:1'], { env });
    assert.equal(badPort.code, 2);
    assert.equal(readFileSync(file, 'utf8'), before, 'a refused set writes nothing');

    assert.equal((await sbx(['config', 'unset', 'limits.cpus'], { env })).code, 0);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { ports: ['0:3000', '127.0.0.1:8080:80'] });
  });

  it('a corrupt or hand-broken file is an error naming the file and the problem, and is never reset', async () => {
    const env = { SBX_CONFIG_DIR: mkdtempSync(join(tmpdir(), 'sbx-cfg-')) };
    const file = join(env.SBX_CONFIG_DIR, 'config.json');
    for (const [content, problem] of [
      ['{ "limits": { "cpus": 2, }', /not valid JSON/],
      ['{ "limits": { "cpus": "two" } }', /limits\.cpus/],
      ['{ "colour": "blue" }', /"colour" is not a configuration key/],
      ['[1, 2]', /not hold a JSON object/],
    ] as const) {
      writeFileSync(file, content);
      for (const args of [
        ['config', 'list'],
        ['config', 'set', 'limits.cpus', '1'],
        ['run', 'shell', '--', 'true'],
        ['doctor'],
      ]) {
        const r = await sbx(args, { env, cwd: await workspace() });
        const out = r.stdout + r.stderr; // doctor reports on stdout
        assert.equal(r.code, 78, `${args.join(' ')}: ${out}`);
        assert.ok(out.includes(file), out);
        assert.match(out, problem);
        assert.doesNotMatch(out, /\n\s+at /, 'no stack trace');
        assert.equal(readFileSync(file, 'utf8'), content, 'the file is left as it was');
      }
    }
  });
});

describe('sbx template ls, init, build, rm', { timeout: 600_000 }, () => {
  it('scaffolds FROM the agent template, shows built/stale, removes the images and never the folder', async () => {
    const env = { SBX_CONFIG_DIR: mkdtempSync(join(tmpdir(), 'sbx-cfg-')) };
    const name = `tpl-${RUN_ID}`.toLowerCase();
    const init = await sbx(['template', 'init', name, '--agent', 'shell'], { env });
    assert.equal(init.code, 0, init.stderr);
    const dir = join(env.SBX_CONFIG_DIR, 'templates', name);
    assert.equal(init.stdout.trim(), dir);
    const dockerfile = readFileSync(join(dir, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^FROM sbx\/base$/m);
    assert.match(dockerfile, /^# RUN apt-get update/m);
    const again = await sbx(['template', 'init', name], { env });
    assert.equal(again.code, 75, again.stderr);
    assert.equal(readFileSync(join(dir, 'Dockerfile'), 'utf8'), dockerfile, 'init never overwrites');
    assert.equal((await sbx(['template', 'init', 'claude'], { env })).code, 2, 'a built-in name is refused');

    type Status = { name: string; origin: string; state: string; image: string };
    const state = async () =>
      json<Status[]>(await sbx(['template', 'ls', '--json'], { env })).find((t) => t.name === name)!;
    assert.deepEqual([(await state()).origin, (await state()).state], ['user', 'absent']);
    assert.equal((await state()).image.startsWith(`sbx/custom-${name}:`), true);
    const builtins = json<Status[]>(await sbx(['template', 'ls', '--json'], { env })).filter(
      (t) => t.origin === 'built-in',
    );
    assert.ok(
      builtins.some((t) => t.name === 'claude' && t.state === 'built'),
      'the suite built claude before',
    );
    assert.equal((await sbx(['template', 'build', name], { env })).code, 0);
    assert.equal((await state()).state, 'built');
    // Nothing to build: the plain form (answered without oclif, see fast.ts) says what --json says.
    const upToDate = await sbx(['template', 'build', name], { env });
    const asJson = json<{ templates: Array<{ template: string; image: string; built: boolean }> }>(
      await sbx(['template', 'build', name, '--json'], { env }),
    );
    assert.equal(asJson.templates[0]!.built, false);
    assert.equal(upToDate.code, 0, upToDate.stderr);
    assert.equal(upToDate.stdout, `${name}\t${asJson.templates[0]!.image}\tup to date\n`);
    writeFileSync(join(dir, 'Dockerfile'), `${dockerfile}RUN echo changed > /opt/changed\n`);
    assert.equal((await state()).state, 'stale');
    assert.match((await sbx(['template', 'ls'], { env })).stdout, new RegExp(`${name}\\s+user\\s+stale`));

    const ws = await workspace();
    assert.equal((await sbx(['create', 'shell', '--template', name], { env, cwd: ws })).code, 0);
    const inUse = await sbx(['template', 'rm', name], { env });
    assert.equal(inUse.code, 75, inUse.stderr);
    assert.match(inUse.stderr, /in use by sbx-/);
    await sbx(['rm', '-f', '.'], { cwd: ws });
    const removed = json<{ removed: string[] }>(await sbx(['template', 'rm', name, '--json'], { env }));
    assert.ok(removed.removed.length >= 2, 'the content-hash tags and :latest');
    assert.equal((await state()).state, 'absent');
    assert.ok(existsSync(join(dir, 'Dockerfile')), 'the folder stays');
  });
});

describe('sbx doctor', { timeout: 120_000 }, () => {
  it('reports each check, and fails with a fix when the engine cannot be reached', async () => {
    const ok = json<{ ok: boolean; checks: Array<{ name: string; status: string; detail: string }> }>(
      await sbx(['doctor', '--json']),
    );
    assert.equal(ok.ok, true);
    const engine = ok.checks.find((c) => c.name === 'engine')!;
    // The engine this pass runs against (Docker's socket, or Podman's through DOCKER_HOST), and why.
    const expected = process.env.DOCKER_HOST
      ? /Podman [\d.]+.* \(API 1\.\d+\).* at unix:\/\/\/run\/podman\/podman\.sock \(DOCKER_HOST\)/
      : /Docker Engine [\d.]+.* \(API 1\.\d+\).* at unix:\/\/\/var\/run\/docker\.sock \(the Docker socket; no DOCKER_HOST or context set\)/;
    assert.match(engine.detail, expected);
    assert.deepEqual(
      ok.checks.map((c) => c.name),
      [
        'config',
        'ca-certificates',
        'engine',
        'runtimes',
        'inner guard',
        'secrets',
        'egress-ca',
        'egress-proxy',
        'disk',
        'templates',
      ],
    );
    // The inner guard's cost, said plainly, and gVisor as the way without it.
    const inner = ok.checks.find((c) => c.name === 'inner guard')!.detail;
    assert.match(inner, /exposes more of the host's kernel/);
    assert.match(inner, /gVisor is the way to have the inner guard without that cost/);
    const runtimes = ok.checks.find((c) => c.name === 'runtimes')!.detail;
    assert.match(runtimes, /the engine has the runtimes .*runc/);
    assert.match(runtimes, /gVisor \(runsc\) is (among them|not among them)/);
    assert.match(ok.checks.find((c) => c.name === 'ca-certificates')!.detail, /extra CA certificate/);

    const down = await sbx(['doctor'], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
    assert.equal(down.code, 69, down.stderr);
    assert.match(
      down.stdout,
      /FAIL {2}engine: No container engine answered at unix:\/\/\/nonexistent\/docker\.sock/,
    );
    assert.match(down.stdout, /fix: Start Docker/);
  });
});

describe('--runtime', { timeout: 600_000 }, () => {
  it('a runtime the engine does not know is refused with how to register it, and nothing is made', async () => {
    const ws = await workspace();
    const r = await sbx(['create', 'shell', '--runtime', 'no-such-runtime'], { cwd: ws });
    assert.equal(r.code, 66, r.stderr);
    assert.match(r.stderr, /has no runtime named no-such-runtime \(asked for by --runtime\); it has: .*runc/);
    // How to register it, in the engine's own terms: Docker's daemon.json and a reload, Podman's containers.conf.
    if (onPodman) assert.match(r.stderr, /containers\.conf/);
    else {
      assert.match(r.stderr, /daemon\.json/);
      assert.match(r.stderr, /kill -HUP/);
    }
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal((await containersOf(ws)).length, 0, 'no sandbox');
    const ours = { label: [`dev.sbx.network=${sandboxName(ws)}`] };
    assert.deepEqual(await docker.listNetworks({ filters: ours }), [], 'no network');
    const bad = await sbx(['create', 'shell', '--runtime', 'no such'], { cwd: ws });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /Invalid runtime name/);
    const env = { SBX_CONFIG_DIR: mkdtempSync(join(tmpdir(), 'sbx-cfg-')), SBX_RUNTIME: undefined };
    assert.equal((await sbx(['config', 'set', 'runtimes.shell', 'nope-rt'], { env })).code, 0);
    const configured = await sbx(['create', 'shell'], { cwd: ws, env });
    assert.equal(configured.code, 66, configured.stderr);
    assert.match(configured.stderr, /asked for by config runtimes\.shell/);
    assert.equal((await containersOf(ws)).length, 0, 'no sandbox');
  });

  it('under Podman, a runtime its compatible API does not apply is refused, and nothing is made', async (t) => {
    if (!onPodman) return t.skip('Docker applies the runtime asked for, or refuses the create');
    const ws = await workspace();
    const r = await sbx(['create', 'shell', '--runtime', 'runsc'], { cwd: ws, timeoutMs: 600_000 });
    if (r.code === 0) {
      // A Podman that applies it: the sandbox really is on gVisor, and says so.
      const kernel = await sbx(['exec', '.', '--', 'cat', '/proc/version'], { cwd: ws });
      assert.notEqual(kernel.stdout.trim(), readFileSync('/proc/version', 'utf8').trim());
      assert.equal(json<{ runtime: string }>(await sbx(['inspect', '--json'], { cwd: ws })).runtime, 'runsc');
      return;
    }
    // Podman 4.3 lists runsc but its Docker-compatible API ignores HostConfig.Runtime: runc would run it.
    assert.equal(r.code, 66, r.stderr);
    assert.match(r.stderr, /did not apply the runtime runsc: the sandbox would have run under \S+/);
    assert.match(r.stderr, /containers\.conf/);
    assert.equal((await containersOf(ws)).length, 0, 'no sandbox');
  });

  it('--runtime runsc runs the sandbox on gVisor; ls --json and inspect say so; reattach keeps it', async (t) => {
    if (onPodman)
      return t.skip(
        'gVisor is registered with Docker by test/run.sh, not with Podman (whose compatible API does not apply a runtime: see the test above)',
      );
    const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
    if (!info.Runtimes?.runsc)
      return t.skip(
        'the engine has no runsc runtime registered (gVisor is not installed here; test/run.sh registers it where it can)',
      );
    const ws = await workspace();
    const created = json<{ id: string }>(
      await sbx(['create', 'shell', '--runtime', 'runsc', '--json'], { cwd: ws }),
    );
    assert.equal((await docker.getContainer(created.id).inspect()).HostConfig.Runtime, 'runsc');
    // gVisor's own kernel answers inside, not the host's.
    const kernel = await sbx(['exec', '.', '--', 'cat', '/proc/version'], { cwd: ws });
    assert.equal(kernel.code, 0, kernel.stderr);
    assert.notEqual(kernel.stdout.trim(), readFileSync('/proc/version', 'utf8').trim());
    const list = await listed();
    assert.ok(validateList(list), JSON.stringify(validateList.errors));
    assert.equal((list.find((s) => s.workspace === ws) as Listed & { runtime: string }).runtime, 'runsc');
    const inspected = json<{ runtime: string }>(await sbx(['inspect', '--json'], { cwd: ws }));
    assert.equal(inspected.runtime, 'runsc');
    assert.match((await sbx(['inspect'], { cwd: ws })).stdout, /Runtime:\s+runsc \(gVisor\)/);
    const again = await sbx(['create', 'shell', '--runtime', 'runc', '--json'], { cwd: ws });
    assert.equal(json<{ id: string }>(again).id, created.id, 'the same sandbox');
    assert.match(
      again.stderr,
      /runs under the runtime runsc; --runtime runc applies only when a sandbox is created/,
    );
    const registry = await sbx(['exec', '.', '--', ...REGISTRY_PING], { cwd: ws });
    assert.equal(registry.stdout, '200', `through the egress proxy from gVisor: ${registry.stderr}`);
    assert.equal((await sbx(['rm', '-f', '.'], { cwd: ws })).code, 0);
  });
});

describe('shell completion', { timeout: 120_000 }, () => {
  it('bash completion offers commands, and sandbox names for commands that take one', async () => {
    const ws = await workspace();
    const { name } = json<{ name: string }>(await sbx(['create', 'shell', '--json'], { cwd: ws }));
    const cache = mkdtempSync(join(tmpdir(), 'sbx-cache-'));
    const env = { XDG_CACHE_HOME: cache };
    assert.equal((await sbx(['autocomplete', 'bash', '--refresh-cache'], { env })).code, 0);
    const shim = mkdtempSync(join(tmpdir(), 'sbx-bin-'));
    writeFileSync(join(shim, 'sbx'), `#!/bin/sh\nexec ${process.execPath} ${BIN} "$@"\n`);
    chmodSync(join(shim, 'sbx'), 0o755);
    const complete = (words: string[]) =>
      execFileSync(
        'bash',
        [
          '-c',
          `source ${join(cache, 'sbx', 'autocomplete', 'functions', 'bash', 'sbx.bash')}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _sbx_with_sandboxes; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { env: { ...process.env, PATH: `${shim}:${process.env.PATH}` } },
      )
        .toString()
        .split('\n')
        .filter(Boolean);
    assert.deepEqual(complete(['sbx', 'st']).sort(), ['start', 'stop']);
    assert.ok(complete(['sbx', 'stop', '']).includes(name));
    assert.deepEqual(complete(['sbx', 'inspect', name.slice(0, -2)]), [name]);
    assert.ok(!complete(['sbx', 'ls', '']).includes(name), 'ls takes no sandbox');
  });

  it('a mistyped command gets a suggestion and exit 2, and nothing runs', async () => {
    const r = await sbx(['stpo', '--all']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /"stpo" is not an sbx command[\s\S]*did you mean `sbx stop`/);
  });
});

describe('containers changed behind sbx', { timeout: 300_000 }, () => {
  it('copes with renamed, removed, older and foreign containers', async () => {
    const ws = await workspace();
    const { id, name } = json<{ id: string; name: string }>(
      await sbx(['create', 'shell', '--json'], { cwd: ws }),
    );
    await docker.getContainer(id).rename({ name: `renamed-${RUN_ID}` });
    assert.ok((await sbx(['ls', '-q'])).stdout.split('\n').includes(`renamed-${RUN_ID}`));
    const reattached = await sbx(['run', 'shell', '--', 'hostname'], { cwd: ws });
    assert.equal(reattached.stdout.trim(), id.slice(0, 12), 'run finds the renamed default sandbox');
    assert.equal((await containersOf(ws)).length, 1);
    assert.equal((await sbx(['inspect', name])).code, 66, 'the old name is gone');

    // An older sbx's container: fewer labels, and one this version does not know.
    const older = await docker.createContainer({
      name: `older-${RUN_ID}`,
      Image: (await docker.getContainer(id).inspect()).Image,
      Labels: {
        'dev.sbx.managed': 'true',
        'dev.sbx.workspace': ws,
        'dev.sbx.from-the-future': 'x',
        [TEST_LABEL]: RUN_ID,
      },
      Cmd: ['sleep', 'infinity'],
    });
    const seen = (await listed()).find((s) => s.id === older.id);
    assert.ok(seen, 'listed');
    assert.ok(validateList([seen]));
    assert.equal((await sbx(['inspect', `older-${RUN_ID}`, '--json'])).code, 0);
    assert.equal((await sbx(['rm', `older-${RUN_ID}`])).code, 0);

    // A foreign container: never listed, never touched.
    const foreign = await docker.createContainer({
      name: `foreign-${RUN_ID}`,
      Image: (await docker.getContainer(id).inspect()).Image,
      Labels: { [TEST_LABEL]: RUN_ID },
      Cmd: ['sleep', 'infinity'],
    });
    assert.ok(!(await listed()).some((s) => s.id === foreign.id));
    const rm = await sbx(['rm', '-f', `foreign-${RUN_ID}`]);
    assert.equal(rm.code, 66, rm.stderr);
    assert.ok(await docker.getContainer(foreign.id).inspect(), 'still there');

    // Removed behind sbx's back, between two commands.
    await docker.getContainer(id).remove({ force: true });
    const gone = await sbx(['stop', `renamed-${RUN_ID}`]);
    assert.equal(gone.code, 66, gone.stderr);
  });

  it('a sandbox removed behind sbx leaves no network or forwarder holding its port once it is made again', async () => {
    const ws = await workspace();
    const port = String(20_000 + Math.floor(Math.random() * 20_000));
    const create = () => sbx(['create', 'shell', '-p', `127.0.0.1:${port}:8000`, '--json'], { cwd: ws });
    const first = json<{ id: string }>(await create());
    const network = (await docker.getContainer(first.id).inspect()).Config.Labels['dev.sbx.network']!;
    await docker.getContainer(first.id).remove({ force: true });
    // A younger network may belong to another sbx creating the same sandbox: it is left alone.
    await new Promise((resolve) => setTimeout(resolve, ORPHAN_AGE_MS + 1000));
    const second = json<{ id: string }>(await create());
    assert.notEqual(second.id, first.id);
    assert.equal(
      (await docker.listNetworks({ filters: { name: [network] } })).filter((n) => n.Name === network).length,
      0,
    );
    const forwarders = await docker.listContainers({
      all: true,
      filters: { label: [`dev.sbx.forwarder=${network}`] },
    });
    assert.deepEqual(forwarders, []);
  });

  it('sbx stop stops the port forwarder; it and a stopped egress proxy come back when their sandbox starts (a reboot on Podman)', async () => {
    const ws = await workspace();
    const r = await sbx(['run', 'shell', '-d', '-p', '0:8000', '--', 'sleep', 'infinity'], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await sbx(['stop', '.'], { cwd: ws })).code, 0);
    const [sandbox] = await containersOf(ws);
    const forwarders = await docker.listContainers({
      all: true,
      filters: { label: [`dev.sbx.forwarder=${sandbox!.Labels['dev.sbx.network']}`] },
    });
    assert.equal(forwarders.length, 1);
    const forwarder = docker.getContainer(forwarders[0]!.Id);
    assert.equal((await forwarder.inspect()).State.Running, false, 'sbx stop stops the port forwarder too');
    const proxy = docker.getContainer(PROXY);
    await proxy.stop();

    const reached = await sbx(['exec', '.', '--', ...REGISTRY_PING], { cwd: ws });
    assert.equal(reached.code, 0, reached.stderr);
    assert.equal(reached.stdout, '200', 'the sandbox reaches the registry through its proxy again');
    assert.equal((await proxy.inspect()).State.Running, true);
    assert.equal((await forwarder.inspect()).State.Running, true);
  });

  it('an egress proxy whose engine still says "running" after its processes died is replaced', async (t) => {
    // Podman keeps a container "running" when its process and conmon die without a cleanup (kill -9,
    // or a reboot of a host whose /run is not a tmpfs); Docker's state follows the process.
    const podman = process.env.DOCKER_HOST?.includes('podman')
      ? execFileSync('which', ['podman'])
      : undefined;
    if (!podman)
      return t.skip(
        'Podman only: Docker learns of a dead container from containerd; this runs in the Podman pass',
      );
    const ws = await workspace();
    assert.equal((await sbx(['create', 'shell'], { cwd: ws })).code, 0);
    const [pid, conmon] = execFileSync('podman', [
      'inspect',
      PROXY,
      '--format',
      '{{.State.Pid}} {{.State.ConmonPid}}',
    ])
      .toString()
      .trim()
      .split(' ');
    process.kill(Number(conmon), 'SIGKILL');
    process.kill(Number(pid), 'SIGKILL');
    const before = await docker.getContainer(PROXY).inspect();
    assert.equal(before.State.Running, true, 'the engine still believes it runs');

    const other = await workspace();
    const created = await sbx(['create', 'shell'], { cwd: other });
    assert.equal(created.code, 0, created.stderr);
    const after = await docker.getContainer(PROXY).inspect();
    assert.notEqual(after.Id, before.Id, 'replaced');
    for (const w of [ws, other]) {
      const reached = await sbx(['exec', '.', '--', ...REGISTRY_PING], { cwd: w });
      assert.equal(
        reached.stdout,
        '200',
        `${w} reaches the registry through the new proxy: ${reached.stderr}`,
      );
    }
  });

  it('a crash of the shared egress proxy shows in doctor and network log; the engine brings it back', async () => {
    const ws = await workspace();
    assert.equal((await sbx(['create', 'shell'], { cwd: ws })).code, 0);
    const doctorOk = json<{ checks: Array<{ name: string; status: string }> }>(
      await sbx(['doctor', '--json'], { cwd: ws }),
    );
    assert.equal(doctorOk.checks.find((c) => c.name === 'egress-proxy')?.status, 'ok');
    const before = await docker.getContainer(PROXY).inspect();
    process.kill(before.State.Pid, 'SIGKILL');
    let after = before;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
      after = await docker.getContainer(PROXY).inspect();
      if (after.State.Running && after.State.StartedAt !== before.State.StartedAt) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.notEqual(after.State.StartedAt, before.State.StartedAt, 'the engine restarted it');
    const doctor = json<{ checks: Array<{ name: string; status: string; detail: string }> }>(
      await sbx(['doctor', '--json'], { cwd: ws }),
    );
    const check = doctor.checks.find((c) => c.name === 'egress-proxy')!;
    assert.equal(check.status, 'warn');
    assert.match(check.detail, /has restarted \d+ times?/);
    const log = await sbx(['network', 'log'], { cwd: ws });
    assert.equal(log.code, 0, log.stderr);
    assert.match(log.stderr, /egress proxy .* has restarted/);
    const reached = await sbx(['exec', '.', '--', ...REGISTRY_PING], { cwd: ws });
    assert.equal(reached.stdout, '200', reached.stderr);
  });

  it('rm --all asks on a terminal, refuses without one unless -f, and stop/rm --all act on every sandbox', async (t) => {
    const ws = await workspace();
    await sbx(['create', 'shell'], { cwd: ws });
    const noTerminal = await sbx(['rm', '--all']);
    assert.equal(noTerminal.code, 2, noTerminal.stderr);
    assert.match(noTerminal.stderr, /Add -f/);
    assert.equal((await containersOf(ws)).length, 1);
    const foreign = await foreignSandboxes();
    if (foreign.length > 0) {
      t.skip(
        `--all would stop and remove sandboxes this run did not make (${foreign.length} on this engine)`,
      );
      return;
    }
    const stopped = await sbx(['stop', '--all']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.ok((await listed()).every((s) => s.state === 'stopped'));
    const removed = await sbx(['rm', '--all', '-f']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(await listed(), []);
    assert.ok(existsSync(ws));
  });
});
