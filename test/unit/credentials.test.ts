import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AGENTS, getAgent } from '../../src/agents/registry.js';
import { credentialsPlan, statefulAgents } from '../../src/sandbox/credentials.js';
import { parseCredentials } from '../../src/shared/parse.js';

describe('credentialsPlan', () => {
  it('sandbox: one volume per agent on its state folder, its dir variable, links for other folders', () => {
    const plan = credentialsPlan(
      'sandbox',
      [getAgent('claude'), getAgent('opencode')],
      '/home/agent',
      '/home/ada',
    );
    assert.deepEqual(
      plan.volumes.map((v) => [v.name, v.target]),
      [
        ['sbx-state-claude', '/home/agent/.claude'],
        ['sbx-state-opencode', '/home/agent/.local/share/opencode'],
      ],
    );
    assert.deepEqual(plan.env, [
      'CLAUDE_CONFIG_DIR=/home/agent/.claude',
      'SBX_STATE_DIRS=/home/agent/.claude:/home/agent/.local/share/opencode',
      'SBX_STATE_LINKS=/home/agent/.config/opencode=/home/agent/.local/share/opencode/.sbx-links/.config/opencode',
    ]);
    assert.deepEqual(plan.binds, []);
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

  it('every agent but the shell keeps state, and login and sync paths lie in its state paths', () => {
    assert.deepEqual(
      statefulAgents(AGENTS.map((a) => a.name)).map((a) => a.name),
      AGENTS.filter((a) => a.name !== 'shell').map((a) => a.name),
    );
    for (const agent of statefulAgents(AGENTS.map((a) => a.name))) {
      const state = agent.state!;
      const kept = [state.dir, ...(state.links ?? [])];
      for (const path of [...(state.login ?? []), ...state.sync, ...state.import.map(([, inside]) => inside)])
        assert.ok(
          kept.some((k) => path === k || path.startsWith(`${k}/`)),
          `${agent.name}: ${path}`,
        );
    }
  });

  it('parses the mode, refusing others with the choices', () => {
    assert.equal(parseCredentials('host'), 'host');
    assert.throws(() => parseCredentials('shared'), /Invalid credentials mode "shared"/);
  });
});
