import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type Docker from 'dockerode';
import { ago } from '../../src/cli/render.js';
import { lastUsedOf } from '../../src/sandbox/discovery.js';
import { idleStopCommand } from '../../src/sandbox/idle.js';
import { excluded, SAVE_NAME } from '../../src/sandbox/save.js';
import { inScope } from '../../src/shared/labels.js';
import { parseIdleStop } from '../../src/shared/parse.js';

describe('idle stop setting', () => {
  it('takes durations of 10 s and more, and off', () => {
    assert.equal(parseIdleStop('2h'), 7200);
    assert.equal(parseIdleStop('1h30m'), 5400);
    for (const off of ['off', '0', 'never']) assert.equal(parseIdleStop(off), 0);
    for (const bad of ['5s', 'soon', '2', '-1h', ''])
      assert.throws(() => parseIdleStop(bad), { name: 'SbxError', kind: 'usage' } as object);
  });

  it('becomes the sandbox command: bash running the watcher with the seconds', () => {
    const cmd = idleStopCommand(600);
    assert.deepEqual([cmd[0], cmd[1], cmd[3], cmd[4]], ['bash', '-c', 'sbx-idle', '600']);
  });
});

describe('last used', () => {
  const info = (state: Partial<Docker.ContainerInspectInfo['State']>, labels: Record<string, string> = {}) =>
    ({
      Created: '2026-01-01T00:00:00Z',
      State: { Running: false, FinishedAt: '0001-01-01T00:00:00Z', ExitCode: 0, ...state },
      Config: { Labels: labels },
    }) as unknown as Docker.ContainerInspectInfo;

  it('is now while running, the stop time when stopped, the creation when never started', () => {
    assert.equal(
      lastUsedOf(info({ Running: true }), Date.parse('2026-02-01T00:00:00Z')),
      '2026-02-01T00:00:00.000Z',
    );
    assert.equal(
      lastUsedOf(info({ FinishedAt: '2026-01-05T10:00:00Z', ExitCode: 143 })),
      '2026-01-05T10:00:00.000Z',
    );
    assert.equal(lastUsedOf(info({})), '2026-01-01T00:00:00.000Z');
  });

  it('is the last activity for a sandbox that stopped itself for being idle', () => {
    assert.equal(
      lastUsedOf(info({ FinishedAt: '2026-01-05T10:00:00Z', ExitCode: 0 }, { 'dev.sbx.idle-stop': '3600' })),
      '2026-01-05T09:00:00.000Z',
    );
  });

  it('reads as "now" or how long ago', () => {
    const now = Date.parse('2026-01-10T00:00:00Z');
    assert.equal(ago('2026-01-09T23:59:30Z', now), 'now');
    assert.equal(ago('2026-01-09T23:55:00Z', now), '5m ago');
    assert.equal(ago('2026-01-09T21:00:00Z', now), '3h ago');
    assert.equal(ago('2025-12-29T00:00:00Z', now), '12d ago');
  });
});

describe('save', () => {
  it('takes names that are one image-name component', () => {
    for (const ok of ['my-setup', 'node20', 'a.b_c', 'x']) assert.ok(SAVE_NAME.test(ok), ok);
    for (const bad of ['My-Setup', 'a b', '-a', 'a-', 'a/b', 'a:b', '', '..'])
      assert.ok(!SAVE_NAME.test(bad), bad);
  });

  it('leaves out mounts and the folders made for them, state, histories, credentials and sbx settings', () => {
    const skip = excluded(['/work/ws/app', '/home/agent/.claude'], ['/home/agent', '/root']);
    for (const [path, kind] of [
      ['/work/ws/app/src/main.ts', 1],
      ['/work/ws', 1],
      ['/work', 1],
      ['/home/agent/.claude', 1],
      ['/home/agent/.codex/auth.json', 1],
      ['/home/agent/.bash_history', 0],
      ['/home/agent/.ssh/id_ed25519', 1],
      ['/root/.npmrc', 1],
      ['/etc/gitconfig', 0],
      ['/tmp/x', 1],
      ['/run/sbx-ready', 1],
    ] as Array<[string, number]>)
      assert.ok(skip(path, kind), `${path} is left out`);
    for (const [path, kind] of [
      ['/usr/local/bin/tool', 1],
      ['/usr/local', 0],
      ['/work', 0],
      ['/home/agent/.bashrc', 0],
      ['/opt/app/config.json', 1],
      ['/home/agent/.claude-other', 1],
    ] as Array<[string, number]>)
      assert.ok(!skip(path, kind), `${path} is kept`);
  });
});

describe('df and prune scope', () => {
  it('is everything without SBX_LABELS, and only what carries them with it', () => {
    assert.ok(inScope({}, {}));
    assert.ok(inScope(undefined, {}));
    const env = { SBX_LABELS: 'ci=run-7' };
    assert.ok(inScope({ ci: 'run-7', other: 'x' }, env));
    assert.ok(!inScope({ ci: 'run-8' }, env));
    assert.ok(!inScope({}, env));
  });
});
