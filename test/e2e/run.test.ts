import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NO_TEST_USER, PROXY, sbx, TEST_USER, workspace } from '../helpers/cli.js';
import { cleanupTestResources, containersOf, docker, execIn, until } from '../helpers/engine.js';

after(() => cleanupTestResources());

describe('sbx run: real agents from the real templates', { timeout: 900_000 }, () => {
  it('claude accepts its bypass flag and answers that it is not logged in (as root)', async () => {
    const ws = await workspace();
    const r = await sbx(['run', 'claude', '--', '-p', 'hi'], { cwd: ws });
    assert.match(r.stdout + r.stderr, /Not logged in/i, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /cannot be used with root/i);
  });

  it('claude does the same as a non-root host user', { skip: NO_TEST_USER }, async () => {
    const ws = await workspace({ owner: TEST_USER });
    const r = await sbx(['run', 'claude', '--', '-p', 'hi'], { cwd: ws, asUser: TEST_USER });
    assert.match(r.stdout + r.stderr, /Not logged in/i, r.stderr);
  });

  it('gemini runs in YOLO mode (not overridden: the folder is trusted) and asks for an auth method', async () => {
    const ws = await workspace();
    const r = await sbx(['run', 'gemini', '--', '-p', 'hi'], { cwd: ws });
    const out = r.stdout + r.stderr;
    assert.match(out, /auth method/i, out);
    assert.match(out, /YOLO mode is enabled/i, out);
    assert.doesNotMatch(out, /overridden/i);
  });

  it('codex says it is not logged in', async () => {
    const ws = await workspace();
    const r = await sbx(['run', 'codex', '--', 'login', 'status'], { cwd: ws });
    assert.match(r.stdout + r.stderr, /Not logged in/i, r.stderr);
  });

  it('opencode starts with every permission set to allow', async () => {
    const ws = await workspace();
    const r = await sbx(['run', 'opencode', '--', 'debug', 'config'], { cwd: ws, timeoutMs: 120_000 });
    const config = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    assert.deepEqual(config.permission, { '*': 'allow' });
  });

  it('copilot asks for authentication', async () => {
    const ws = await workspace();
    const r = await sbx(['run', 'copilot', '--', '-p', 'hi'], { cwd: ws });
    assert.match(r.stdout + r.stderr, /No authentication information found/i, r.stderr);
  });

  it('kiro starts its chat with every tool trusted', {
    skip: "Kiro's official installer downloads from Kiro's own servers, which this machine cannot reach (only the npm and Debian registries are reachable)",
  }, async () => {
    const ws = await workspace();
    const r = await sbx(['run', 'kiro', '--', '--help'], { cwd: ws, timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /--trust-all-tools/, 'sbx launches `kiro-cli chat --trust-all-tools`');
  });
});

describe('sbx run: one persistent sandbox per workspace', { timeout: 600_000 }, () => {
  it('reattaches to the same container, started again if stopped, with what was installed still there', async () => {
    const ws = await workspace();
    const first = await sbx(
      [
        'run',
        'shell',
        '--',
        'sh',
        '-c',
        'sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hello >/dev/null && hello',
      ],
      { cwd: ws },
    );
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /Hello, world!/);
    const [c1] = await containersOf(ws);
    assert.ok(c1);
    // Made by the plain form (sbx's fast path, without oclif), said and labelled as the full command does.
    assert.match(
      first.stderr,
      new RegExp(`^sbx: created sandbox ${c1.Names[0]!.slice(1)} for shell \\(sbx/base:`, 'm'),
    );
    assert.equal(c1.Labels['dev.sbx.version'], JSON.parse(readFileSync('package.json', 'utf8')).version);
    await docker.getContainer(c1.Id).stop({ t: 0 });
    const second = await sbx(['run', 'shell', '--', 'hello'], { cwd: ws });
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stderr, /created sandbox/);
    assert.match(second.stdout, /Hello, world!/);
    const all = await containersOf(ws);
    assert.deepEqual(
      all.map((c) => c.Id),
      [c1.Id],
    );
  });

  it('an error after the agent ran (a conflict when its work is synced back) runs it once, with that error and exit code', async () => {
    // The plain `sbx run AGENT -- ARGS` is answered before oclif loads; it may hand over to the full
    // command only before the agent is launched, or the agent would run a second time.
    const ws = await workspace();
    writeFileSync(join(ws, 'both.txt'), 'v1\n');
    const created = await sbx(['create', 'shell', '--sync'], { cwd: ws });
    assert.equal(created.code, 0, created.stderr);
    const [c] = await containersOf(ws);
    const agent = sbx(
      [
        'run',
        'shell',
        '--',
        'sh',
        '-c',
        'echo run >> /tmp/runs; echo sandbox > both.txt; while [ ! -e /tmp/go ]; do sleep 0.1; done',
      ],
      { cwd: ws },
    );
    await until('the agent to run', async () => (await execIn(c!.Id, ['cat', '/tmp/runs'])).includes('run'));
    writeFileSync(join(ws, 'both.txt'), 'host\n');
    await execIn(c!.Id, ['touch', '/tmp/go']);
    const r = await agent;
    assert.equal(r.code, 75, r.stderr);
    assert.match(r.stderr, /^Error: 1 file changed both here and in sbx-.*both\.txt/m);
    assert.match(r.stderr, /^Hint: .*--ours/m);
    assert.equal(await execIn(c!.Id, ['cat', '/tmp/runs']), 'run\n', 'the agent ran once');
    assert.equal(readFileSync(join(ws, 'both.txt'), 'utf8'), 'host\n', 'nothing overwritten');
  });

  it('two sbx run started at the same moment end up in one container', async () => {
    const ws = await workspace();
    const results = await Promise.all([1, 2, 3].map(() => sbx(['run', 'shell', '--', 'true'], { cwd: ws })));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.equal((await containersOf(ws)).length, 1);
  });

  it('mounts the workspace at the same path, as working directory, with the git identity and a working git', async () => {
    const ws = await workspace();
    const r = await sbx(
      [
        'run',
        'shell',
        '--',
        'sh',
        '-c',
        'pwd; git config user.name; git config user.email; git status --short >/dev/null && echo git-ok; cat /proc/1/comm',
      ],
      { cwd: ws },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [ws, 'Ada Tester', 'ada@example.test', 'git-ok', 'tini']);
  });

  it('no git identity on the host is a warning, not a failure', async () => {
    const ws = await workspace({ git: false });
    const r = await sbx(['run', 'shell', '--', 'true'], {
      cwd: ws,
      // A home of its own without a git identity (the workspace itself may not be the home).
      env: {
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_CONFIG_NOSYSTEM: '1',
        HOME: mkdtempSync(join(tmpdir(), 'sbx-home-')),
      },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Warning: git has no user.name or user.email for /);
  });

  it('files written inside belong to the non-root host user, who has passwordless sudo inside', {
    skip: NO_TEST_USER,
  }, async () => {
    const ws = await workspace({ owner: TEST_USER });
    const r = await sbx(
      ['run', 'shell', '--', 'sh', '-c', 'touch made-inside && id -un && (sudo -n true && echo sudo-ok)'],
      { cwd: ws, asUser: TEST_USER },
    );
    if (/does not honour setuid programs/.test(r.stderr)) {
      // A runtime without setuid (Debian 12's gVisor): sbx said so when it made the sandbox.
      assert.match(r.stderr, /sudo: The "no new privileges" flag is set/);
      assert.equal(r.stdout.trim(), 'agent');
    } else {
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), ['agent', 'sudo-ok']);
    }
    const st = statSync(join(ws, 'made-inside'));
    assert.equal(st.uid, TEST_USER.uid);
    assert.equal(st.gid, TEST_USER.gid);
  });

  it('a different agent in a workspace whose sandbox lacks it is a clear error; the shell works in any', async () => {
    const ws = await workspace();
    assert.equal((await sbx(['run', 'shell', '--', 'true'], { cwd: ws })).code, 0);
    const r = await sbx(['run', 'claude', '--', '-p', 'hi'], { cwd: ws });
    assert.equal(r.code, 75);
    assert.match(r.stderr, /made for shell, and claude is not installed/);
    assert.match(r.stderr, /Hint: /);
    const ws2 = await workspace();
    assert.equal((await sbx(['run', 'claude', '--', '--version'], { cwd: ws2 })).code, 0);
    const shell = await sbx(['run', 'shell', '--', 'sh', '-c', 'command -v claude'], { cwd: ws2 });
    assert.equal(shell.code, 0, shell.stderr);
  });
});

describe('sbx run: streams, exit codes, env and volumes', { timeout: 300_000 }, () => {
  it("pipes stdin through, keeps stdout and stderr apart, and exits with the command's code", async () => {
    const ws = await workspace();
    const piped = await sbx(['run', 'shell', '--', 'cat'], { cwd: ws, input: 'hi\n' });
    assert.equal(piped.stdout, 'hi\n');
    const split = await sbx(['run', 'shell', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7'], {
      cwd: ws,
    });
    assert.equal(split.code, 7);
    assert.equal(split.stdout, 'out\n');
    assert.match(split.stderr, /^err$/m);
    assert.doesNotMatch(split.stdout, /err/);
  });

  it('passes -e, -e KEY and --env-file to the agent without storing their values in the container', async () => {
    const ws = await workspace();
    const file = join(ws, '..', `${ws.split('/').pop()}.env`);
    writeFileSync(file, 'FROM_FILE=file-secret-5c1\n');
    const r = await sbx(
      [
        'run',
        'shell',
        '-e',
        'GIVEN=given-secret-9f2',
        '-e',
        'FROM_HOST',
        '--env-file',
        file,
        '--',
        'sh',
        '-c',
        'echo $GIVEN $FROM_HOST $FROM_FILE',
      ],
      {
        cwd: ws,
        env: { FROM_HOST: 'host-secret-7d3' },
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'given-secret-9f2 host-secret-7d3 file-secret-5c1');
    const [c] = await containersOf(ws);
    const inspected = JSON.stringify(await docker.getContainer(c!.Id).inspect());
    for (const secret of ['given-secret-9f2', 'host-secret-7d3', 'file-secret-5c1'])
      assert.ok(!inspected.includes(secret), secret);
  });

  it('mounts -v volumes, read-only when asked', async () => {
    const ws = await workspace();
    const data = join(ws, '..', `${ws.split('/').pop()}-data`);
    mkdirSync(data);
    writeFileSync(join(data, 'in.txt'), 'data!');
    const r = await sbx(
      [
        'run',
        'shell',
        '-v',
        `${data}:/data:ro`,
        '--',
        'sh',
        '-c',
        'cat /data/in.txt; touch /data/x 2>/dev/null || echo read-only',
      ],
      { cwd: ws },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'data!read-only\n');
  });

  it("goes out through the host's proxy (chained behind sbx's egress proxy) and trusts extra CA certificates", async () => {
    // A company's explicit proxy, played by a CONNECT proxy in this process, reached from the
    // egress proxy's container through its network's gateway (this machine).
    const seen: string[] = [];
    const corporate = createServer();
    corporate.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      seen.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const out = connect(Number(port), host!, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        out.write(head);
        out.pipe(client);
        client.pipe(out);
      });
      out.on('error', () => client.destroy());
      client.on('error', () => out.destroy());
    });
    await new Promise<void>((resolve) => corporate.listen(0, '0.0.0.0', resolve));
    try {
      const ws = await workspace();
      assert.equal((await sbx(['create', 'shell'], { cwd: ws })).code, 0, 'the egress proxy exists');
      const proxy = await docker.getContainer(PROXY).inspect();
      const outside = Object.entries(proxy.NetworkSettings.Networks).find(
        ([name]) => !name.startsWith('sbx-net-'),
      );
      assert.ok(outside?.[1].Gateway, 'the egress proxy has a network with a gateway');
      await sbx(['rm', '-f', '.'], { cwd: ws });
      const corp = `http://${outside[1].Gateway}:${(corporate.address() as AddressInfo).port}`;
      const r = await sbx(
        [
          'run',
          'shell',
          '--',
          'sh',
          '-c',
          'echo "$HTTPS_PROXY $NO_PROXY"; curl -sS -o /dev/null -w "%{http_code}\\n" https://registry.npmjs.org/-/ping; node -e "fetch(\'https://registry.npmjs.org/-/ping\').then(r => console.log(r.status))"',
        ],
        { cwd: ws, env: { HTTPS_PROXY: corp, NO_PROXY: 'localhost,127.0.0.1' } },
      );
      assert.equal(r.code, 0, r.stderr);
      // The sandbox keeps its own proxy settings (the host's would bypass the policy, and fail).
      assert.deepEqual(r.stdout.trim().split('\n'), [
        `http://${PROXY}:3128 localhost,127.0.0.1,::1`,
        '200',
        '200',
      ]);
      assert.deepEqual(seen, ['registry.npmjs.org:443', 'registry.npmjs.org:443']);
    } finally {
      corporate.close();
    }
  });
});

describe('sbx run: errors are one paragraph, a hint and a documented exit code, and change nothing', {
  timeout: 300_000,
}, () => {
  const expectError = (r: { code: number; stderr: string }, code: number, pattern: RegExp) => {
    assert.equal(r.code, code, r.stderr);
    assert.match(r.stderr, pattern);
    assert.match(r.stderr, /Hint: /);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  };

  it('unknown agent: lists them and suggests the nearest', async () => {
    expectError(await sbx(['run', 'cluade']), 2, /Unknown agent "cluade".*claude, gemini/);
    assert.match((await sbx(['run', 'cluade'])).stderr, /Did you mean `claude`/);
  });

  it('workspace missing or not a folder', async () => {
    const ws = await workspace();
    writeFileSync(join(ws, 'file'), '');
    expectError(await sbx(['run', 'shell', join(ws, 'missing')]), 66, /does not exist/);
    expectError(await sbx(['run', 'shell', join(ws, 'file')]), 66, /is not a folder/);
  });

  it('bad -e and -v, and a missing -v host path create nothing', async () => {
    const ws = await workspace();
    expectError(await sbx(['run', 'shell', '-e', '9X=1', '--', 'true'], { cwd: ws }), 2, /"9X=1"/);
    expectError(
      await sbx(['run', 'shell', '-v', 'nocolon', '--', 'true'], { cwd: ws }),
      2,
      /Invalid volume "nocolon"/,
    );
    expectError(
      await sbx(['run', 'shell', '-v', '/nonexistent/x:/x', '--', 'true'], { cwd: ws }),
      66,
      /\/nonexistent\/x/,
    );
    assert.equal((await containersOf(ws)).length, 0);
  });

  it('no engine: says which socket was tried and how to start one', async () => {
    const r = await sbx(['run', 'shell', '--', 'true'], {
      env: { DOCKER_HOST: 'unix:///tmp/sbx-no-engine.sock' },
    });
    expectError(r, 69, /No container engine answered at unix:\/\/\/tmp\/sbx-no-engine.sock \(DOCKER_HOST\)/);
    assert.match(r.stderr, /systemctl start docker/);
  });

  it("a failed template build exits 65 and shows the failing step's output, even though the stream ends cleanly", async () => {
    const ws = await workspace();
    const tpl = join(ws, '.sbx', 'templates', 'broken');
    mkdirSync(tpl, { recursive: true });
    writeFileSync(join(tpl, 'Dockerfile'), 'FROM sbx/base\nRUN echo "about to fail" && exit 3\n');
    const r = await sbx(['run', 'shell', '--template', 'broken', '--', 'true'], { cwd: ws });
    expectError(r, 65, /Building the template broken .* failed/);
    assert.match(r.stderr, /\| about to fail/);
    // Docker says "Step 2/5 : RUN", Podman "STEP 2/5: RUN".
    assert.match(r.stderr, /(at Step|STEP) 2\/\d+ ?: "?RUN/i);
    assert.equal((await containersOf(ws)).length, 0);
  });

  it('an image that is missing and cannot be pulled says so', async () => {
    const ws = await workspace();
    expectError(
      await sbx(['run', 'shell', '--template', '127.0.0.1:1/sbx-test/none:1', '--', 'true'], { cwd: ws }),
      68,
      /could not be pulled/,
    );
  });

  it('debug shows the stack trace', async () => {
    const r = await sbx(['run', 'shell', '--debug', '--', 'true'], {
      env: { DOCKER_HOST: 'unix:///tmp/sbx-no-engine.sock' },
    });
    assert.equal(r.code, 69);
    assert.match(r.stderr, /\n\s+at /);
  });
});

describe('sbx run: custom templates', { timeout: 600_000 }, () => {
  it('builds a template folder FROM the agent template, honouring .dockerignore, and never rebuilds it unchanged', async () => {
    const ws = await workspace();
    const tpl = join(ws, 'my-template');
    mkdirSync(join(tpl, 'ignored'), { recursive: true });
    writeFileSync(
      join(tpl, 'Dockerfile'),
      'FROM sbx/base\nCOPY . /opt/ctx/\nRUN echo custom > /opt/marker\nLABEL dev.sbx.agents="shell"\n',
    );
    writeFileSync(join(tpl, '.dockerignore'), 'ignored\n');
    writeFileSync(join(tpl, 'ignored', 'big.bin'), 'x');
    writeFileSync(join(tpl, 'kept.txt'), 'kept');
    const r = await sbx(
      [
        'run',
        'shell',
        '--template',
        './my-template',
        '--',
        'sh',
        '-c',
        // What ls shows, without ls (Debian 12's gVisor fails coreutils' statx calls).
        "cat /opt/marker; find /opt/ctx -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%f\\n' | sort",
      ],
      { cwd: ws },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'custom\nDockerfile\nkept.txt\n');
    assert.match(r.stderr, /building template my-template/);
    const ws2 = await workspace();
    const again = await sbx(['run', 'shell', '--template', join(tpl), '--', 'cat', '/opt/marker'], {
      cwd: ws2,
    });
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /building/);
    assert.ok(existsSync(join(tpl, 'ignored', 'big.bin')));
  });
});

describe('sbx run: configuration', { timeout: 300_000 }, () => {
  it('a broken config file is an error naming the file, and the file is left as it was', async () => {
    const ws = await workspace();
    const dir = join(ws, '..', `${ws.split('/').pop()}-config`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), '{"templates": {"shell": ');
    const r = await sbx(['run', 'shell', '--', 'true'], { cwd: ws, env: { SBX_CONFIG_DIR: dir } });
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, new RegExp(`${join(dir, 'config.json')} cannot be used`));
    assert.equal(readFileSync(join(dir, 'config.json'), 'utf8'), '{"templates": {"shell": ');
    writeFileSync(join(dir, 'config.json'), '{"templates": {"shell": 42}}');
    const invalid = await sbx(['run', 'shell', '--', 'true'], { cwd: ws, env: { SBX_CONFIG_DIR: dir } });
    assert.equal(invalid.code, 78, invalid.stderr);
    assert.match(invalid.stderr, /templates\.shell must be a string/);
  });

  it('every command that reads the config reports a broken one with its path (sbx ls too, which used to ignore it)', async () => {
    const ws = await workspace();
    const dir = join(ws, '..', `${ws.split('/').pop()}-config`);
    mkdirSync(dir);
    // A broken file that names an engine: ignoring it would list another engine's sandboxes.
    const text = '{"engine": {"host": "unix:///nowhere.sock"}, ';
    writeFileSync(join(dir, 'config.json'), text);
    for (const args of [
      ['ls'],
      ['ls', '--json'],
      ['stop', '--all'],
      ['inspect', '.'],
      ['network', 'log', '.'],
    ]) {
      const r = await sbx(args, { cwd: ws, env: { SBX_CONFIG_DIR: dir } });
      assert.equal(r.code, 78, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${join(dir, 'config.json')} cannot be used`), args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    // What helps mend it still runs.
    const path = await sbx(['config', 'path'], { env: { SBX_CONFIG_DIR: dir } });
    assert.equal(path.code, 0, path.stderr);
    assert.equal(path.stdout.trim(), join(dir, 'config.json'));
    assert.equal(readFileSync(join(dir, 'config.json'), 'utf8'), text, 'left as it was');
  });

  it('a default template per agent comes from the config', async () => {
    const ws = await workspace();
    const dir = join(ws, '..', `${ws.split('/').pop()}-config`);
    mkdirSync(join(dir, 'templates', 'marked'), { recursive: true });
    writeFileSync(
      join(dir, 'templates', 'marked', 'Dockerfile'),
      'FROM sbx/base\nRUN echo from-config > /opt/marker\n',
    );
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ templates: { shell: 'marked' } }));
    const r = await sbx(['run', 'shell', '--', 'cat', '/opt/marker'], {
      cwd: ws,
      env: { SBX_CONFIG_DIR: dir },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'from-config\n');
  });
});
