import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type Result, RUN_ID, STATE_PREFIX, sbx, TEST_USER, workspace } from '../helpers/cli.js';
import { cleanupTestResources, containersOf, docker } from '../helpers/engine.js';

after(() => cleanupTestResources());

const ok = (r: Result) => {
  assert.equal(r.code, 0, r.stderr);
  return r;
};

/** A host user's login volume of an agent (root's unless told). */
const loginVolume = (agent: string, uid = 0) => `${STATE_PREFIX}${agent}-${uid}`;

/** What a login volume holds (every path), seen by a throwaway container (not through any sandbox). */
const volumeFiles = (agent: string, uid = 0) =>
  execFileSync('docker', [
    'run',
    '--rm',
    '-v',
    `${loginVolume(agent, uid)}:/v`,
    '--entrypoint',
    'find',
    'sbx/base:latest',
    '/v',
  ])
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((p) => p.replace(/^\/v\/?/, ''));

const volumeExists = async (name: string) =>
  (await docker.listVolumes()).Volumes.some((v) => v.Name === name);

describe("agent state: the login shared by one user's sandboxes, kept after rm; the rest per sandbox", {
  timeout: 900_000,
}, () => {
  // What each real agent writes on its own (offline) start, and a command that makes it write.
  const agents: Array<[string, string[], string]> = [
    ['claude', ['-p', 'hi'], 'projects'],
    ['gemini', ['-p', 'hi'], 'projects.json'],
    ['codex', ['login', 'status'], 'tmp'],
    ['opencode', ['debug', 'config'], 'opencode.db'],
    ['copilot', ['-p', 'hi'], 'session-state'],
  ];
  for (const [agent, args, written] of agents) {
    it(`${agent}: what the agent itself writes stays in its sandbox, out of the login volume and other workspaces`, async () => {
      const ws = await workspace();
      await sbx(['run', agent, '--', ...args], { cwd: ws, timeoutMs: 120_000 });
      const own = ok(
        await sbx(['exec', '.', '--', 'sh', '-c', `ls -a "$HOME"/${agentDir(agent)}`], { cwd: ws }),
      );
      assert.ok(own.stdout.split('\n').includes(written), own.stdout);
      const inVolume = volumeFiles(agent);
      assert.ok(!inVolume.some((p) => p.endsWith(`/${written}`)), `${written} in ${inVolume.join(', ')}`);
      const other = await workspace();
      ok(await sbx(['create', agent], { cwd: other }));
      const seen = ok(
        await sbx(['exec', '.', '--', 'sh', '-c', `ls -a "$HOME"/${agentDir(agent)}`], { cwd: other }),
      );
      assert.ok(!seen.stdout.split('\n').includes(written), seen.stdout);
    });
  }

  it("codex: logged in once as one user, logged in in their every other sandbox, also after rm of all of them; not in another user's", async () => {
    const as = { asUser: TEST_USER };
    const first = await workspace({ owner: TEST_USER });
    const login = await sbx(['run', 'codex', '--', 'login', '--with-api-key'], {
      cwd: first,
      ...as,
      input: `sk-test-${RUN_ID}`,
    });
    assert.match(login.stdout + login.stderr, /API key saved/, login.stderr);
    assert.ok(volumeFiles('codex', TEST_USER.uid).includes('.codex/auth.json'), 'the login is in the volume');
    const second = await workspace({ owner: TEST_USER });
    const status = await sbx(['run', 'codex', '--', 'login', 'status'], { cwd: second, ...as });
    assert.match(status.stdout + status.stderr, /API key configured/, status.stderr);
    const rootWs = await workspace(); // another host user (root): another login volume
    const rootStatus = await sbx(['run', 'codex', '--', 'login', 'status'], { cwd: rootWs });
    assert.match(rootStatus.stdout + rootStatus.stderr, /Not logged in/, rootStatus.stderr);

    const listed = JSON.parse(ok(await sbx(['auth', 'ls', '--json'], as)).stdout) as Array<
      Record<string, unknown>
    >;
    const codex = listed.find((s) => s.agent === 'codex')!;
    assert.equal(codex.volume, loginVolume('codex', TEST_USER.uid));
    assert.equal(codex.loggedIn, true);
    assert.ok(Number(codex.size) > 0);
    assert.match(String(codex.lastUsed), /^\d{4}-\d\d-\d\dT/);
    const users = (
      await docker.listContainers({ all: true, filters: { volume: [loginVolume('codex', TEST_USER.uid)] } })
    ).length;
    assert.equal((codex.sandboxes as string[]).length, users);
    assert.ok(users >= 2);
    assert.match(
      ok(await sbx(['auth', 'ls'], as)).stdout,
      new RegExp(`^codex\\s+\\S+\\s+\\S+\\s+\\d{4}-\\S+ \\S+\\s+yes\\s+${users}$`, 'm'),
    );

    ok(await sbx(['rm', '-f', first, second], as));
    const third = await workspace({ owner: TEST_USER });
    const still = await sbx(['run', 'codex', '--', 'login', 'status'], { cwd: third, ...as });
    assert.match(still.stdout + still.stderr, /API key configured/, 'rm kept the login');

    const asked = await sbx(['auth', 'rm', 'codex'], as);
    assert.equal(asked.code, 2, 'without a terminal to ask on, -f is needed');
    const inUse = await sbx(['auth', 'rm', 'codex', '-f'], as);
    assert.equal(inUse.code, 75, inUse.stderr);
    assert.match(inUse.stderr, /used by sbx-/);
    const mounting = await docker.listContainers({
      all: true,
      filters: { volume: [loginVolume('codex', TEST_USER.uid)] },
    });
    ok(await sbx(['rm', '-f', ...mounting.map((c) => c.Id)], as));
    ok(await sbx(['auth', 'rm', 'codex', '-f'], as));
    assert.equal(await volumeExists(loginVolume('codex', TEST_USER.uid)), false);
    assert.equal(await volumeExists(loginVolume('codex', 0)), true, "root's login volume stays");
    const fresh = await sbx(['run', 'codex', '--', 'login', 'status'], {
      cwd: await workspace({ owner: TEST_USER }),
      ...as,
    });
    assert.match(fresh.stdout + fresh.stderr, /Not logged in/);
  });

  it("the old shared state volume: its owner's login is copied into their login volume once, said once; the rest stays; --legacy removes it", async () => {
    const prefix = `sbx-test-${RUN_ID}-mig-`;
    const env = { SBX_STATE_PREFIX: prefix };
    execFileSync('docker', [
      'volume',
      'create',
      '--label',
      'dev.sbx.state=claude',
      '--label',
      `dev.sbx.test=${RUN_ID}`,
      `${prefix}claude`,
    ]);
    execFileSync('docker', [
      'run',
      '--rm',
      '-v',
      `${prefix}claude:/v`,
      '--entrypoint',
      'sh',
      'sbx/base:latest',
      '-c',
      'echo old-login > /v/.credentials.json && echo planted > /v/CLAUDE.md && ln -s /etc/shadow /v/evil',
    ]);
    const ws = await workspace();
    const first = ok(await sbx(['create', 'claude'], { cwd: ws, env }));
    const said = first.stdout + first.stderr;
    assert.match(said, /Your claude login \(\.claude\/\.credentials\.json\) was copied into/);
    assert.match(said, /auth rm claude --legacy/);
    const inside = ok(
      await sbx(
        ['exec', '.', '--', 'sh', '-c', 'cat ~/.claude/.credentials.json; cat ~/.claude/CLAUDE.md; true'],
        {
          cwd: ws,
          env,
        },
      ),
    );
    assert.equal(inside.stdout, 'old-login\n', 'the login, and nothing else of the old volume');
    const again = ok(await sbx(['create', 'claude'], { cwd: await workspace(), env }));
    assert.doesNotMatch(again.stdout + again.stderr, /was copied/, 'said once');
    const listed = JSON.parse(ok(await sbx(['auth', 'ls', '--json'], { env })).stdout) as Array<{
      volume: string;
      legacy: boolean;
    }>;
    assert.ok(listed.some((v) => v.volume === `${prefix}claude` && v.legacy));
    ok(await sbx(['auth', 'rm', 'claude', '--legacy', '-f'], { env }));
    assert.equal(await volumeExists(`${prefix}claude`), false);
    assert.equal(await volumeExists(`${prefix}claude-0`), true, 'the new login volume stays');
  });

  it('--credentials none keeps nothing beyond the sandbox; the mode is fixed at creation', async () => {
    const prefix = `sbx-test-${RUN_ID}-none-`;
    const env = { SBX_STATE_PREFIX: prefix };
    const ws = await workspace();
    ok(
      await sbx(['run', 'codex', '--credentials', 'none', '--', 'login', '--with-api-key'], {
        cwd: ws,
        env,
        input: 'sk-x',
      }),
    );
    assert.ok(!(await docker.listVolumes()).Volumes.some((v) => v.Name.startsWith(prefix)), 'no volume');
    const inspected = JSON.parse(ok(await sbx(['inspect', '--json'], { cwd: ws })).stdout);
    // No login volume: the only volume is the sandbox's own git folder (private history), removed with it.
    assert.deepEqual(
      inspected.mounts.filter(
        (m: { type: string; destination: string }) =>
          m.type === 'volume' && m.destination !== join(ws, '.git'),
      ),
      [],
    );
    const other = await sbx(['run', 'codex', '--credentials', 'sandbox', '--', 'true'], { cwd: ws, env });
    assert.equal(other.code, 75, other.stderr);
    assert.match(other.stderr, /created with --credentials none/);
    ok(await sbx(['rm', '-f', '.'], { cwd: ws }));
    const again = await sbx(['run', 'codex', '--credentials', 'none', '--', 'login', 'status'], {
      cwd: ws,
      env,
    });
    assert.match(again.stdout + again.stderr, /Not logged in/);
  });

  it("--credentials host mounts the host's own state, with a warning", async () => {
    const home = mkdtempSync(join(tmpdir(), 'sbx-home-'));
    mkdirSync(join(home, '.codex'));
    writeFileSync(join(home, '.codex', 'auth.json'), JSON.stringify({ OPENAI_API_KEY: 'sk-host-key' }));
    const ws = await workspace();
    const r = await sbx(['run', 'codex', '--credentials', 'host', '--', 'login', 'status'], {
      cwd: ws,
      env: { HOME: home },
    });
    assert.match(r.stdout + r.stderr, /API key configured/, r.stderr);
    assert.match(
      r.stderr,
      /Warning: --credentials host: the sandbox can read and change your host's codex login/,
    );
    ok(
      await sbx(['exec', '.', '--', 'sh', '-c', 'echo from-sandbox > ~/.codex/written-inside'], { cwd: ws }),
    );
    assert.equal(readFileSync(join(home, '.codex', 'written-inside'), 'utf8'), 'from-sandbox\n');
  });

  it("auth import copies the host login into the user's login volume", async () => {
    const home = mkdtempSync(join(tmpdir(), 'sbx-home-'));
    const missing = await sbx(['auth', 'import', 'codex'], { env: { HOME: home } });
    assert.equal(missing.code, 66, missing.stderr);
    assert.match(missing.stderr, /No codex login found on this host/);
    mkdirSync(join(home, '.codex'));
    writeFileSync(join(home, '.codex', 'auth.json'), JSON.stringify({ OPENAI_API_KEY: 'sk-imported' }));
    ok(await sbx(['auth', 'import', 'codex'], { env: { HOME: home } }));
    assert.ok(volumeFiles('codex').includes('.codex/auth.json'));
    const r = await sbx(['run', 'codex', '--', 'login', 'status'], { cwd: await workspace() });
    assert.match(r.stdout + r.stderr, /API key configured/, r.stderr);
    const other = await sbx(['run', 'codex', '--', 'login', 'status'], {
      cwd: await workspace({ owner: TEST_USER }),
      asUser: TEST_USER,
    });
    assert.doesNotMatch(other.stdout + other.stderr, /API key configured/, "not another user's");
  });
});

describe('claude: --sync-config carries the host settings in, never over the login', {
  timeout: 300_000,
}, () => {
  it('claude reads a synced setting; files already in the state volume are unchanged', async () => {
    const ws = await workspace();
    ok(await sbx(['create', 'claude'], { cwd: ws }));
    ok(
      await sbx(
        [
          'exec',
          '.',
          '--',
          'sh',
          '-c',
          'echo sandbox-login > ~/.claude/.credentials.json; echo mine > ~/.claude/keep.txt',
        ],
        { cwd: ws },
      ),
    );
    const before = ok(
      await sbx(['exec', '.', '--', 'sh', '-c', 'cat ~/.claude/.credentials.json ~/.claude/keep.txt'], {
        cwd: ws,
      }),
    ).stdout;
    // The fake credentials would make claude try the network: park them during the run.
    ok(
      await sbx(
        [
          'exec',
          '.',
          '--',
          'sh',
          '-c',
          'mv "$CLAUDE_SECURESTORAGE_CONFIG_DIR/.credentials.json" /root/.claude-login',
        ],
        { cwd: ws },
      ),
    );

    const home = mkdtempSync(join(tmpdir(), 'sbx-home-'));
    mkdirSync(join(home, '.claude', 'commands'), { recursive: true });
    writeFileSync(join(home, '.claude', 'settings.json'), JSON.stringify({ model: 'sbx-synced-model' }));
    writeFileSync(join(home, '.claude', 'CLAUDE.md'), 'Answer in haiku.\n');
    writeFileSync(join(home, '.claude', 'commands', 'hello.md'), 'Say hello.\n');
    writeFileSync(join(home, '.claude', '.credentials.json'), 'host-login');
    const r = await sbx(['run', 'claude', '--sync-config', '--', '-p', 'hi'], {
      cwd: ws,
      env: { HOME: home },
    });
    assert.match(
      r.stderr,
      /synced ~\/\.claude\/CLAUDE\.md, ~\/\.claude\/settings\.json, ~\/\.claude\/commands/,
    );
    assert.match(
      r.stdout + r.stderr,
      /sbx-synced-model/,
      'claude reports the model from the synced settings',
    );

    ok(
      await sbx(
        [
          'exec',
          '.',
          '--',
          'sh',
          '-c',
          'mv /root/.claude-login "$CLAUDE_SECURESTORAGE_CONFIG_DIR/.credentials.json"',
        ],
        { cwd: ws },
      ),
    );
    const after = ok(
      await sbx(['exec', '.', '--', 'sh', '-c', 'cat ~/.claude/.credentials.json ~/.claude/keep.txt'], {
        cwd: ws,
      }),
    ).stdout;
    assert.equal(after, before, "the login and the sandbox's other files are untouched");
    const synced = ok(
      await sbx(['exec', '.', '--', 'cat', '/root/.claude/CLAUDE.md', '/root/.claude/commands/hello.md'], {
        cwd: ws,
      }),
    );
    assert.equal(synced.stdout, 'Answer in haiku.\nSay hello.\n');
  });
});

describe('secrets stay secret', { timeout: 300_000 }, () => {
  it('values from -e and --env-file reach the agent, a forwarded key only as a placeholder, and none appears anywhere else', async () => {
    const ws = await workspace();
    const stamp = `${RUN_ID}-${Date.now()}`;
    const [viaFlag, viaFile, viaHost] = ['flag', 'file', 'host'].map((k) => `secret-${k}-${stamp}`);
    const envFile = join(mkdtempSync(join(tmpdir(), 'sbx-env-')), 'secrets.env');
    writeFileSync(envFile, `FROM_FILE=${viaFile}\n`);
    const configDir = mkdtempSync(join(tmpdir(), 'sbx-cfg-'));
    ok(await sbx(['config', 'set', 'env', 'FROM_FLAG'], { env: { SBX_CONFIG_DIR: configDir } }));
    const env = { SBX_CONFIG_DIR: configDir, ANTHROPIC_API_KEY: viaHost, FROM_FLAG: undefined };
    const args = ['-e', `FROM_FLAG=${viaFlag}`, '--env-file', envFile];
    const seen = await sbx(['run', 'claude', ...args, '--debug', '--', '--version'], { cwd: ws, env });
    assert.equal(seen.code, 0, seen.stderr);
    const inside = ok(
      await sbx(['exec', ...args, '.', '--', 'sh', '-c', 'echo "$FROM_FLAG $FROM_FILE $ANTHROPIC_API_KEY"'], {
        cwd: ws,
        env,
      }),
    );
    // The forwarded key is bound as a secret by default: the agent gets a placeholder, the proxy the key
    // (see secrets.test.ts).
    assert.match(
      inside.stdout,
      new RegExp(`^${viaFlag} ${viaFile} sbx-secret-anthropic-api-key-[0-9a-f]{24}\n$`),
      'the agent gets both values, and a placeholder for the key',
    );

    const [container] = await containersOf(ws);
    const places: Record<string, string> = {
      'sbx run --debug output': seen.stdout + seen.stderr,
      'docker inspect (container)': JSON.stringify(await docker.getContainer(container!.Id).inspect()),
      'docker image inspect': JSON.stringify(await docker.getImage(container!.ImageID).inspect()),
      'docker history': execFileSync('docker', ['history', '--no-trunc', container!.ImageID]).toString(),
      'sbx inspect --json --debug': JSON.stringify(
        await sbx(['inspect', '--json', '--debug'], { cwd: ws, env }),
      ),
      'sbx ls --json': (await sbx(['ls', '--json'], { env })).stdout,
      "sbx's config file": readFileSync(join(configDir, 'config.json'), 'utf8'),
    };
    for (const [place, text] of Object.entries(places)) {
      for (const secret of [viaFlag, viaFile, viaHost] as string[])
        assert.ok(!text.includes(secret), `${secret} found in ${place}`);
    }
  });
});

function agentDir(agent: string): string {
  return {
    claude: '.claude',
    gemini: '.gemini',
    codex: '.codex',
    opencode: '.local/share/opencode',
    copilot: '.copilot',
  }[agent]!;
}
