import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AGENTS, getAgent } from '../../src/agents/registry.js';
import {
  credentialsPlan,
  legacyStateVolume,
  loginVolume,
  statefulAgents,
} from '../../src/sandbox/credentials.js';
import { parseCredentials } from '../../src/shared/parse.js';

describe('credentialsPlan', () => {
  it("sandbox: the agent's folder stays in the sandbox; one login volume per agent and user, linked in", () => {
    const plan = credentialsPlan(
      'sandbox',
      [getAgent('claude'), getAgent('opencode')],
      '/home/agent',
      '/home/ada',
      () => false,
      '1000',
    );
    assert.deepEqual(
      plan.volumes.map((v) => [v.name, v.target]),
      [
        ['sbx-login-claude-1000', '/var/lib/sbx/login/claude'],
        ['sbx-login-opencode-1000', '/var/lib/sbx/login/opencode'],
      ],
    );
    assert.deepEqual(plan.env, [
      'CLAUDE_CONFIG_DIR=/home/agent/.claude',
      'CLAUDE_SECURESTORAGE_CONFIG_DIR=/var/lib/sbx/login/claude/.claude',
      'SBX_STATE_DIRS=/home/agent/.claude:/home/agent/.local/share/opencode',
      'SBX_LOGIN_DIRS=/var/lib/sbx/login/claude:/var/lib/sbx/login/opencode',
      'SBX_LOGIN_LINKS=/home/agent/.claude/.credentials.json=/var/lib/sbx/login/claude/.claude/.credentials.json:/home/agent/.local/share/opencode/auth.json=/var/lib/sbx/login/opencode/.local/share/opencode/auth.json',
    ]);
    assert.deepEqual(plan.binds, []);
  });

  it('sandbox: another host user gets other volumes; the old shared name is never one of them', () => {
    const root = credentialsPlan('sandbox', [getAgent('codex')], '/root', '/root', () => false, '0');
    const ada = credentialsPlan(
      'sandbox',
      [getAgent('codex')],
      '/home/agent',
      '/home/ada',
      () => false,
      '1000',
    );
    assert.notEqual(root.volumes[0]!.name, ada.volumes[0]!.name);
    for (const name of [root.volumes[0]!.name, ada.volumes[0]!.name])
      assert.notEqual(name, legacyStateVolume('codex'));
    assert.equal(loginVolume('codex', '4242', { SBX_STATE_PREFIX: 't-' }), 't-codex-4242');
  });

  it("host: binds the host's existing state paths at the same place in the home, and warns", () => {
    const plan = credentialsPlan('host', [getAgent('claude')], '/root', '/home/ada', (p) =>
      p.endsWith('.claude'),
    );
    assert.deepEqual(plan.binds, ['/home/ada/.claude:/root/.claude']);
    assert.deepEqual(plan.volumes, []);
    assert.match(plan.warnings[0]!, /can read and change your host's claude login/);
  });

  it('none: nothing', () => {
    assert.deepEqual(credentialsPlan('none', [getAgent('codex')], '/root', '/root'), {
      volumes: [],
      binds: [],
      env: [],
      warnings: [],
    });
  });

  it('every agent but the shell keeps state; its login files are its credentials, and only those are imported', () => {
    assert.deepEqual(
      statefulAgents(AGENTS.map((a) => a.name)).map((a) => a.name),
      AGENTS.filter((a) => a.name !== 'shell').map((a) => a.name),
    );
    for (const agent of statefulAgents(AGENTS.map((a) => a.name))) {
      const state = agent.state!;
      assert.ok(state.credentials.length > 0, agent.name);
      const shared = (path: string) => state.credentials.some((k) => path === k || path.startsWith(`${k}/`));
      for (const path of [...(state.login ?? []), ...state.import.map(([, inside]) => inside)])
        assert.ok(shared(path), `${agent.name}: ${path}`);
      // What --sync-config copies in (instructions, settings) is never shared between projects.
      for (const path of state.sync) assert.ok(!shared(path), `${agent.name}: ${path}`);
    }
  });

  it('parses the mode, refusing others with the choices', () => {
    assert.equal(parseCredentials('host'), 'host');
    assert.throws(() => parseCredentials('shared'), /Invalid credentials mode "shared"/);
  });
});
