import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN, PROXY, type Result, RUN_ID, STATE_PREFIX, sbx, TEST_LABEL, workspace } from '../helpers/cli.js';
import { cleanupTestResources, containersOf, docker, until } from '../helpers/engine.js';
import { NO_TMUX, terminal } from '../helpers/terminal.js';

after(() => cleanupTestResources());

const json = <T>(r: Result): T => {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
};

interface Report {
  scope: Record<string, string>;
  sandboxes: Array<{ name: string; writable: number; state: string; lastUsed: string }>;
  images: Array<{
    id: string;
    tags: string[];
    template: string | null;
    status: string;
    size: number;
    sharedSize: number;
    sandboxes: string[];
  }>;
  volumes: Array<{ name: string; size: number }>;
  totals: { images: number; imagesShared: number; sandboxes: number; total: number };
}

interface Plan {
  sandboxes: Array<{ name: string }>;
  images: Array<{ id: string; tags: string[]; status: string }>;
  networks: Array<{ name: string; sandbox: string; forwarder: string | null }>;
  freed: number;
  removed: boolean;
  failed: unknown[];
}

const exists = {
  image: (id: string) =>
    docker
      .getImage(id)
      .inspect()
      .then(
        () => true,
        () => false,
      ),
  network: (name: string) =>
    docker
      .getNetwork(name)
      .inspect()
      .then(
        () => true,
        () => false,
      ),
  container: (name: string) =>
    docker
      .getContainer(name)
      .inspect()
      .then(
        () => true,
        () => false,
      ),
};

const testVolumes = async () =>
  ((await docker.listVolumes({ filters: { label: [`${TEST_LABEL}=${RUN_ID}`] } })).Volumes ?? [])
    .map((v) => v.Name)
    .sort();

describe('sbx df and sbx prune', { timeout: 900_000 }, () => {
  it('df shows template images as current or superseded with the engine sizes, layers counted once; prune removes exactly the leftovers', async () => {
    // Everything this test sees is its own: SBX_LABELS (set by the helpers) scopes df and prune.
    const parent = mkdtempSync(join(tmpdir(), 'sbx-tpl-'));
    const dir = join(parent, `tpl-${RUN_ID}`);
    assert.equal((await sbx(['template', 'init', dir, '--agent', 'shell'])).code, 0);
    const scaffold = readFileSync(join(dir, 'Dockerfile'), 'utf8');
    // Each version: the scaffold's parent plus one layer of its own (a template change). The run's id
    // in the step: an earlier run's build cache (an interrupted run's is never removed) would
    // otherwise give this run the same layer, shared and so not freed.
    const build = async (version: number) => {
      writeFileSync(
        join(dir, 'Dockerfile'),
        `${scaffold}RUN head -c 300000 /dev/urandom > /opt/layer-v${version}-${RUN_ID}\n`,
      );
      return json<{ templates: Array<{ image: string }> }>(
        await sbx(['template', 'build', dir, '--json'], { timeoutMs: 600_000 }),
      ).templates[0]!.image;
    };
    const v1 = await build(1);
    const wsOld = await workspace();
    writeFileSync(join(wsOld, 'keep.txt'), 'mine');
    const old = json<{ name: string }>(
      await sbx(['create', 'shell', wsOld, '--template', dir, '-p', '0:8080', '--json']),
    );
    const v2 = await build(2);
    const wsKept = await workspace();
    const kept = json<{ name: string }>(await sbx(['create', 'shell', wsKept, '--template', dir, '--json']));
    const v3 = await build(3);
    const oldNetwork = (await docker.getContainer(old.name).inspect()).Config.Labels['dev.sbx.network']!;
    const forwarder = `${oldNetwork}-ports`;
    assert.ok(await exists.container(forwarder), 'the old sandbox has a port forwarder');

    // df: statuses, the engine's own sizes, shared layers counted once.
    const report = json<Report>(await sbx(['df', '--json']));
    assert.deepEqual(report.scope, { [TEST_LABEL]: RUN_ID });
    const byTag = (tag: string) => report.images.find((i) => i.tags.includes(tag))!;
    assert.equal(byTag(v1).status, 'superseded');
    assert.equal(byTag(v2).status, 'superseded');
    assert.equal(byTag(v3).status, 'current');
    assert.deepEqual(byTag(v1).sandboxes, [old.name]);
    assert.deepEqual(byTag(v2).sandboxes, [kept.name]);
    // Podman's /system/df has no labels: there sbx reads the engine's image and container lists, and so does the test.
    const podman = JSON.stringify(await docker.version()).includes('Podman');
    const engine = (
      podman
        ? {
            Images: await docker.listImages(),
            Containers: await docker.listContainers({ all: true, size: true }),
          }
        : await docker.df()
    ) as {
      Images: Array<{ Id: string; Size: number; SharedSize: number }>;
      Containers: Array<{ Names: string[]; SizeRw: number }>;
    };
    for (const img of report.images) {
      const e = engine.Images.find((i) => i.Id === img.id)!;
      assert.deepEqual([img.size, img.sharedSize], [e.Size, e.SharedSize], `engine sizes of ${img.tags}`);
    }
    for (const s of report.sandboxes) {
      const e = engine.Containers.find((c) => c.Names.includes(`/${s.name}`))!;
      assert.equal(s.writable, e.SizeRw, `writable layer of ${s.name}`);
    }
    assert.equal(report.images.length, 3, JSON.stringify(report.images.map((i) => i.tags)));
    // The three versions share their template's parent layers: counted once, they are the parent's
    // size plus each version's own layer. (Not from the engine's SharedSize: that counts layers shared
    // with any image on the engine, and build leftovers of other runs make it vary.)
    const parentRef = /^FROM\s+(\S+)/m.exec(scaffold)![1]!;
    const parentSize = (await docker.getImage(parentRef).inspect()).Size;
    const own = report.images.reduce((a, i) => a + (i.size - parentSize), 0);
    // Podman's layer sizes in an image's history fall short of its image size by a few KiB of
    // metadata (about 12 KB for these), so there the layer-based totals are near, not equal.
    const near = (actual: number, expected: number, what: string) =>
      podman
        ? assert.ok(Math.abs(actual - expected) < 64 * 1024, `${what}: ${actual} vs ${expected}`)
        : assert.equal(actual, expected, what);
    near(report.totals.images, parentSize + own, 'image total');
    near(report.totals.imagesShared, 2 * parentSize, 'shared');
    const table = await sbx(['df']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`${v1.replace(/[/.]/g, '\\$&')}\\s.*superseded`));

    // The old sandbox is removed behind sbx's back: its image is now unused, its network and forwarder left.
    await docker.getContainer(old.name).remove({ force: true });
    // A login: an agent's state volume whose last sandbox is gone. Nothing of prune may take it.
    const loginWs = await workspace();
    assert.equal((await sbx(['create', 'claude', loginWs])).code, 0, 'create claude');
    assert.equal((await sbx(['rm', '-f', loginWs])).code, 0, 'rm');
    const volumesBefore = await testVolumes();
    assert.ok(volumesBefore.includes(`${STATE_PREFIX}claude-0`), JSON.stringify(volumesBefore));
    const noTerminal = await sbx(['prune']);
    assert.equal(noTerminal.code, 2, noTerminal.stderr);
    assert.match(noTerminal.stderr, /--force/);
    // The network is listed once it is older than a sandbox being created could be (20 s).
    const dry = await until('the orphan network to be listed', async () => {
      const plan = json<Plan>(await sbx(['prune', '--dry-run', '--json']));
      return plan.networks.length > 0 ? plan : undefined;
    });
    assert.deepEqual(
      dry.images.map((i) => i.tags),
      [[v1]],
    );
    assert.deepEqual(dry.networks, [{ name: oldNetwork, sandbox: old.name, forwarder }]);
    assert.deepEqual(dry.sandboxes, []);
    assert.ok(dry.freed >= 300_000, `frees at least v1's own layer: ${dry.freed}`);
    assert.equal(dry.removed, false);
    assert.ok(await exists.image(v1), '--dry-run removes nothing');
    assert.ok(await exists.network(oldNetwork));
    const listed = await sbx(['prune', '--dry-run']);
    assert.ok(listed.stdout.includes(v1) && listed.stdout.includes(oldNetwork), listed.stdout);

    const done = json<Plan>(await sbx(['prune', '--force', '--json']));
    assert.equal(done.removed, true);
    assert.deepEqual(done.failed, []);
    assert.deepEqual(
      done.images.map((i) => i.tags),
      [[v1]],
    );
    assert.deepEqual(
      done.networks.map((n) => n.name),
      [oldNetwork],
    );
    assert.equal(await exists.image(v1), false, 'the superseded, unused image is gone');
    assert.equal(await exists.network(oldNetwork), false, 'the orphan network is gone');
    assert.equal(await exists.container(forwarder), false, 'its port forwarder is gone');
    assert.ok(await exists.image(v2), 'a superseded image a sandbox uses stays');
    assert.ok(await exists.image(v3), 'the current image stays');
    assert.ok(await exists.container(kept.name), 'the other sandbox stays');
    assert.deepEqual(await testVolumes(), volumesBefore, 'no volume (logins, proxy state) is removed');
    assert.equal(readFileSync(join(wsOld, 'keep.txt'), 'utf8'), 'mine', 'workspaces stay');

    rmSync(parent, { recursive: true, force: true });
    const nothing = await sbx(['prune', '--force']);
    assert.equal(nothing.code, 0, nothing.stderr);
    assert.match(nothing.stderr, /nothing to prune/);
    // Not even when asked for everything (stopped sandboxes and unused current images too).
    assert.equal((await sbx(['prune', '--all', '--force'])).code, 0);
    assert.ok((await testVolumes()).includes(`${STATE_PREFIX}claude-0`), 'the login stays after prune --all');
  });

  it('prune --sandboxes --until removes only stopped sandboxes unused for that long, leaving their files', async () => {
    const ws = await workspace();
    writeFileSync(join(ws, 'keep.txt'), 'mine');
    const s = json<{ name: string }>(await sbx(['create', 'shell', ws, '--json']));
    assert.equal((await sbx(['stop', s.name])).code, 0);
    const recent = json<Plan>(await sbx(['prune', '--sandboxes', '--until', '1h', '--dry-run', '--json']));
    assert.ok(!recent.sandboxes.some((x) => x.name === s.name), 'stopped just now: not unused for an hour');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const done = json<Plan>(await sbx(['prune', '--sandboxes', '--until', '1s', '--force', '--json']));
    assert.ok(done.sandboxes.some((x) => x.name === s.name));
    assert.equal((await containersOf(ws)).length, 0);
    assert.equal(readFileSync(join(ws, 'keep.txt'), 'utf8'), 'mine');

    for (const args of [
      ['--until', '30d'],
      ['--sandboxes', '--until', 'soon'],
    ]) {
      const bad = await sbx(['prune', ...args, '--dry-run']);
      assert.equal(bad.code, 2, bad.stderr);
    }
  });
});

describe('sbx prune on a terminal', {
  skip: NO_TMUX,
  timeout: 300_000,
}, () => {
  const { screen, line, open, kill } = terminal(`sbx-disk-${process.pid}`);
  const shows = (pattern: RegExp) =>
    until(`${pattern} on the screen`, async () => pattern.test(screen()), 60_000);
  after(kill);

  it('asks before removing: "n" removes nothing, "y" removes', async () => {
    const ws = await workspace();
    const s = json<{ name: string }>(await sbx(['create', 'shell', ws, '--json']));
    assert.equal((await sbx(['stop', s.name])).code, 0);
    open(ws, 160, 40);
    line(
      `export PS1='host$ ' SBX_LABELS=${TEST_LABEL}=${RUN_ID} SBX_STATE_PREFIX=${STATE_PREFIX} SBX_PROXY_NAME=${PROXY}; clear`,
    );
    line(`node ${BIN} prune --sandboxes`);
    await shows(/Remove these\? \[y\/N\]/);
    assert.match(screen(), new RegExp(`sandbox\\s+${s.name}`));
    line('n');
    await shows(/nothing removed/);
    assert.equal((await containersOf(ws)).length, 1, '"n" removes nothing');
    line(`clear; node ${BIN} prune --sandboxes`);
    await shows(/Remove these\? \[y\/N\]/);
    line('y');
    await until('the sandbox to be removed', async () =>
      (await containersOf(ws)).length === 0 ? true : undefined,
    );
  });
});

describe('sbx save', { timeout: 900_000 }, () => {
  it('saves what was installed, not the workspace, logins or secrets; --template NAME uses it elsewhere', async () => {
    const ws = await workspace();
    const marker = `ws-marker-${RUN_ID}-${Date.now()}`;
    writeFileSync(join(ws, 'mine.txt'), marker);
    const secret = `secret-marker-${RUN_ID}-${Date.now()}`;
    const keep = `keep-marker-${RUN_ID}-${Date.now()}`;
    const s = json<{ name: string }>(await sbx(['create', 'shell', ws, '--json']));
    const setup = await sbx(
      [
        'exec',
        s.name,
        '--',
        'sh',
        '-c',
        [
          'sudo npm install -g --silent is-number@7.0.0',
          `echo ${keep} | sudo tee /opt/keep.txt >/dev/null`,
          `mkdir -p ~/.claude ~/.ssh && echo ${secret} > ~/.claude/.credentials.json && echo ${secret} > ~/.ssh/id_test`,
          `echo ${secret} > ~/.bash_history`,
          'sudo rm /etc/issue.net',
          `cat ${ws}/mine.txt > /dev/null`,
        ].join(' && '),
      ],
      { timeoutMs: 300_000 },
    );
    assert.equal(setup.code, 0, setup.stderr);

    const name = `saved-${RUN_ID}`.toLowerCase();
    const saved = await sbx(['save', s.name, name, '--json'], { timeoutMs: 600_000 });
    const result = json<{ image: string; size: number; added: number; name: string }>(saved);
    assert.match(saved.stderr, /is running: files its processes have open are saved as they are/);
    assert.equal(result.name, name);
    assert.ok(result.size > result.added && result.added > 0, JSON.stringify(result));
    const image = await docker.getImage(result.image).inspect();
    assert.equal(image.Config.Labels['dev.sbx.saved'], name);
    assert.equal(image.Config.Labels[TEST_LABEL], RUN_ID);
    assert.equal(image.Config.Labels['dev.sbx.workspace'], undefined, 'no sandbox labels in the image');
    assert.ok(!(image.Config.Env ?? []).some((e) => e.startsWith('SBX_')), 'no sandbox variables');

    const templates = json<Array<{ name: string; origin: string; image: string }>>(
      await sbx(['template', 'ls', '--json']),
    );
    assert.deepEqual(
      templates.filter((t) => t.name === name).map((t) => [t.origin, t.image]),
      [['saved', result.image]],
    );

    // Every byte of every layer: the marker written in the image is there, the others are not.
    const stream = await docker.getImage(result.image).get();
    const found = { keep: false, secret: false, marker: false };
    let tail = '';
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const text = tail + chunk.toString('latin1');
      if (text.includes(keep)) found.keep = true;
      if (text.includes(secret)) found.secret = true;
      if (text.includes(marker)) found.marker = true;
      tail = text.slice(-200);
    }
    assert.deepEqual(found, { keep: true, secret: false, marker: false });

    const other = await workspace();
    const created = json<{ name: string; image: string }>(
      await sbx(['create', 'shell', '--template', name, '--json'], { cwd: other }),
    );
    assert.equal(created.image, result.image);
    const check = await sbx(
      [
        'exec',
        created.name,
        '--',
        'sh',
        '-c',
        `pwd; ls; cat /opt/keep.txt; ls /usr/local/lib/node_modules; test -e ${ws} || echo no-first-workspace; test -e ~/.claude/.credentials.json || echo no-login; test -e /etc/issue.net || echo deleted-stays-deleted`,
      ],
      { cwd: other },
    );
    assert.equal(check.code, 0, check.stderr);
    const lines = check.stdout.trim().split('\n');
    assert.equal(lines[0], other, 'the workspace is the new one');
    assert.ok(!check.stdout.includes('mine.txt'));
    assert.ok(lines.includes(keep) && lines.includes('is-number'), check.stdout);
    assert.ok(lines.includes('no-first-workspace') && lines.includes('no-login'), check.stdout);
    assert.ok(
      lines.includes('deleted-stays-deleted'),
      'a file the sandbox deleted is not in the saved image',
    );

    // Bad input changes nothing.
    for (const [args, code] of [
      [['save', s.name, 'Not Valid'], 2],
      [['save', s.name, name], 75],
      [['save', `no-such-${RUN_ID}`, 'whatever'], 66],
      [['save', s.name, 'base'], 2],
    ] as Array<[string[], number]>) {
      const r = await sbx(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(!r.stderr.includes('    at '), 'no stack trace');
    }
    assert.equal(
      (await docker.getImage(result.image).inspect()).Id,
      image.Id,
      'refused saves change nothing',
    );

    const inUse = await sbx(['template', 'rm', name]);
    assert.equal(inUse.code, 75, inUse.stderr);
    assert.equal((await sbx(['rm', '-f', created.name])).code, 0);
    const removed = await sbx(['template', 'rm', name]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(await exists.image(result.image), false);
    assert.ok(existsSync(join(ws, 'mine.txt')));
  });
});

describe('idle stop', { timeout: 600_000 }, () => {
  it('stops an idle sandbox by itself; one with a session attached or a busy process keeps running; reattach works', async () => {
    const create = async (ws: string) =>
      json<{ name: string }>(await sbx(['create', 'shell', ws, '--idle-stop', '10s', '--json'])).name;
    const top = async (name: string) =>
      ((await docker.getContainer(name).top()).Processes ?? []).map((p: string[]) => p.join(' ')).join('\n');
    // Each one's session or busy process starts right after it is made, before the next one is.
    const attached = await create(await workspace());
    const session = sbx(['exec', attached, '--', 'sleep', '60'], { timeoutMs: 120_000 });
    await until('the session to run', async () => (/sleep 60/.test(await top(attached)) ? true : undefined));
    const wsBusy = await workspace();
    const busy = await create(wsBusy);
    const detached = await sbx(
      ['run', 'shell', '-d', '--', 'timeout', '60', 'sh', '-c', 'while :; do :; done'],
      {
        cwd: wsBusy,
      },
    );
    assert.equal(detached.code, 0, detached.stderr);
    // This one's setting comes from the config (idleStop) instead of the flag.
    const idleWs = await workspace();
    const cfg = { SBX_CONFIG_DIR: mkdtempSync(join(tmpdir(), 'sbx-cfg-')) };
    assert.equal((await sbx(['config', 'set', 'idleStop', '10s'], { env: cfg })).code, 0);
    const idle = json<{ name: string }>(await sbx(['create', 'shell', idleWs, '--json'], { env: cfg })).name;
    const started = Date.now();
    const running = async (name: string) => (await docker.getContainer(name).inspect()).State.Running;
    const startedAt = async (name: string) => (await docker.getContainer(name).inspect()).State.StartedAt;
    const firstStart = { attached: await startedAt(attached), busy: await startedAt(busy) };
    await until('the idle sandbox to stop', async () => ((await running(idle)) ? undefined : true), 60_000);
    // Give the others more than their idle time too.
    while (Date.now() - started < 25_000) await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(await running(attached), true, 'a sandbox with an attached session keeps running');
    assert.equal(await running(busy), true, 'a sandbox with a busy process keeps running');
    assert.deepEqual(
      { attached: await startedAt(attached), busy: await startedAt(busy) },
      firstStart,
      'and they never stopped meanwhile',
    );
    const info = await docker.getContainer(idle).inspect();
    assert.equal(info.State.ExitCode, 0, 'it stopped itself (not killed)');

    const listed = json<Array<{ name: string; state: string; lastUsed: string }>>(
      await sbx(['ls', '--json']),
    );
    const entry = listed.find((s) => s.name === idle)!;
    assert.equal(entry.state, 'stopped');
    assert.ok(Date.parse(entry.lastUsed) < Date.parse(info.State.FinishedAt), 'last used: before it idled');
    assert.match((await sbx(['ls'])).stdout, /LAST USED/);

    // Reattached by a plain sbx run, as a user would.
    const again = await sbx(['run', 'shell', '--', 'echo', 'back'], { cwd: idleWs });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim(), 'back');
    assert.equal(await running(idle), true);
    assert.equal((await session).code, 0);

    const bad = await sbx(['create', 'shell', await workspace(), '--idle-stop', 'soon']);
    assert.equal(bad.code, 2, bad.stderr);
  });
});
