import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AGENTS, getAgent } from '../../src/agents/registry.js';
import type { SbxError } from '../../src/shared/errors.js';
import { BUILTIN_DIR } from '../../src/templates/template.js';

describe('agent registry', () => {
  it('has a template folder for every agent', () => {
    for (const agent of AGENTS)
      assert.ok(existsSync(join(BUILTIN_DIR, agent.template, 'Dockerfile')), agent.name);
  });

  it('launches every agent with its bypass flag', () => {
    const flags: Record<string, string> = {
      claude: '--dangerously-skip-permissions',
      gemini: '--yolo',
      codex: '--dangerously-bypass-approvals-and-sandbox',
      kiro: '--trust-all-tools',
      copilot: '--allow-all-tools',
    };
    for (const [name, flag] of Object.entries(flags)) assert.ok(getAgent(name).command.includes(flag), name);
    assert.match(getAgent('opencode').env.OPENCODE_CONFIG_CONTENT ?? '', /"permission":"allow"/);
  });

  it('refuses an unknown agent, listing them and suggesting the nearest', () => {
    assert.throws(
      () => getAgent('cluade'),
      (err: SbxError) =>
        err.exitCode === 2 && /claude, gemini/.test(err.message) && /`claude`/.test(err.hint ?? ''),
    );
  });
});
