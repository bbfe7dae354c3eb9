/**
 * The workspace is a project, not a home (issue 26, point 6): `/`, a home and its parents, a folder
 * holding sbx's config or cache folder are refused as workspaces (also through a symlink), unless
 * --allow-home-workspace says otherwise (with a warning, sbx's folders hidden inside); sbx's folders
 * never reach a sandbox through -v. Each run uses a temporary HOME, so the real one is never mounted.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type Result, sbx } from '../helpers/cli.js';
import { cleanupTestResources, containersOf } from '../helpers/engine.js';

after(() => cleanupTestResources());

/** A temporary home with sbx's config and cache folders in their default places, each holding a marker. */
function tempHome(): {
  home: string;
  env: Record<string, string | undefined>;
  config: string;
  cache: string;
} {
  const home = realpathSync(mkdtempSync(join(tmpdir(), 'sbx-home-')));
  const config = join(home, '.config', 'sbx');
  const cache = join(home, '.cache', 'sbx');
  for (const dir of [config, cache]) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'marker-secret'), 'do-not-show\n');
  }
  return {
    home,
    config,
    cache,
    env: {
      HOME: home,
      XDG_CONFIG_HOME: undefined,
      XDG_CACHE_HOME: undefined,
      SBX_CONFIG_DIR: undefined,
      SBX_CACHE_DIR: undefined,
    },
  };
}

const refused = (r: Result, what: RegExp) => {
  assert.equal(r.code, 2, `exit code\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, what);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
};

describe('the workspace is a project, not a home', { timeout: 600_000 }, () => {
  it('refuses the home folder, a symlink to it, a parent of it, and a folder holding the config folder; makes nothing', async () => {
    const { home, env } = tempHome();
    const link = join(realpathSync(mkdtempSync(join(tmpdir(), 'sbx-link-'))), 'home-link');
    symlinkSync(home, link);
    const outer = realpathSync(mkdtempSync(join(tmpdir(), 'sbx-outer-')));
    const nestedHome = join(outer, 'user');
    mkdirSync(nestedHome);
    const cases: Array<[string, string, Record<string, string | undefined>, RegExp]> = [
      ['home', home, env, /is your home folder/],
      ['a symlink to home', link, env, /is your home folder/],
      ['a parent of home', outer, { ...env, HOME: nestedHome }, /holds your home folder/],
      [
        'a folder holding the config folder',
        outer,
        { ...env, HOME: home, XDG_CONFIG_HOME: join(outer, 'cfg') },
        /holds sbx's own folder .*cfg\/sbx/,
      ],
    ];
    for (const [what, ws, e, message] of cases) {
      const r = await sbx(['run', 'shell', '--', 'true'], { cwd: ws, env: e });
      refused(r, message);
      assert.match(r.stderr, /--allow-home-workspace/, `${what}: the hint names the flag`);
      assert.equal((await containersOf(realpathSync(ws))).length, 0, `${what}: nothing was created`);
    }
    // The explicit workspace argument is checked the same way.
    refused(await sbx(['create', 'shell', link], { env }), /is your home folder/);
    rmSync(home, { recursive: true, force: true });
    rmSync(outer, { recursive: true, force: true });
  });

  it('refuses / (before anything is built or made)', async () => {
    const { env } = tempHome();
    // A template that does not exist: were / not refused first, the run would stop there, not make a sandbox on /.
    const r = await sbx(['run', 'shell', '--template', '/nonexistent-sbx-template', '--', 'true'], {
      cwd: '/',
      env,
    });
    refused(r, /The workspace \/ is the root of the file system/);
    assert.equal((await containersOf('/')).length, 0);
  });

  it('refuses a workspace inside sbx config folder, even with --allow-home-workspace', async () => {
    const { env, config } = tempHome();
    const inside = join(config, 'templates', 'mine');
    mkdirSync(inside, { recursive: true });
    const r = await sbx(['run', 'shell', '--allow-home-workspace', '--', 'true'], { cwd: inside, env });
    refused(r, /is inside sbx's own folder/);
  });

  it('takes a subfolder of home; with --allow-home-workspace takes home itself, warns, and hides sbx folders', async () => {
    const { home, env, config, cache } = tempHome();
    const project = join(home, 'src', 'project');
    mkdirSync(project, { recursive: true });
    const sub = await sbx(['run', 'shell', '--', 'sh', '-c', 'pwd'], { cwd: project, env });
    assert.equal(sub.code, 0, sub.stderr);
    assert.equal(sub.stdout.trim(), project);
    assert.doesNotMatch(sub.stderr, /allow-home-workspace/);

    const show = [
      `ls -A ${config} | wc -l`,
      `ls -A ${cache} | wc -l`,
      `cat ${config}/marker-secret 2>&1 || true`,
      `sudo -n sh -c 'echo planted > ${config}/config.json' 2>/dev/null && echo WROTE || echo write-refused`,
      `ls ${home}/src`,
    ].join('; ');
    const r = await sbx(['run', 'shell', '--allow-home-workspace', '--', 'sh', '-c', show], {
      cwd: home,
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /--allow-home-workspace: .* is your home folder; the agent can read and change everything/,
    );
    assert.deepEqual(r.stdout.trim().split('\n'), [
      '0',
      '0',
      `cat: ${config}/marker-secret: No such file or directory`,
      'write-refused',
      'project',
    ]);
    rmSync(home, { recursive: true, force: true });
  });

  it('refuses a -v of sbx config or cache folder, of a folder holding it, or of a symlink to it', async () => {
    const { home, env, config, cache } = tempHome();
    const ws = join(home, 'project');
    mkdirSync(ws);
    const link = join(ws, 'cfg-link');
    symlinkSync(config, link);
    for (const source of [config, cache, join(home, '.config'), home, link, join(config, 'marker-secret')]) {
      const r = await sbx(['run', 'shell', '-v', `${source}:/mnt/x:ro`, '--', 'true'], { cwd: ws, env });
      refused(r, /would show sbx's own folder/);
      assert.equal((await containersOf(ws)).length, 0, `${source}: nothing was created`);
    }
    rmSync(home, { recursive: true, force: true });
  });
});
