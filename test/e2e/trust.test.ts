import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  BIN,
  PROXY,
  RUN_ID,
  type RunOptions,
  STATE_PREFIX,
  sbx,
  TEST_LABEL,
  workspace,
} from '../helpers/cli.js';
import { cleanupTestResources, containersOf } from '../helpers/engine.js';
import { NO_TMUX, terminal } from '../helpers/terminal.js';

after(() => cleanupTestResources());

/** A config folder of the suite's own (XDG_CONFIG_HOME): the approvals never touch the user's. */
const xdg = mkdtempSync(join(tmpdir(), 'sbx-trust-xdg-'));
const opts = (cwd: string, more: RunOptions = {}): RunOptions => ({
  cwd,
  ...more,
  env: { XDG_CONFIG_HOME: xdg, SBX_CONFIG_DIR: undefined, ...more.env },
});
const settings = (ws: string, body: object) => {
  mkdirSync(join(ws, '.sbx'), { recursive: true });
  writeFileSync(join(ws, '.sbx', 'settings.json'), JSON.stringify(body));
};
const refused = async (ws: string, what: RegExp) => {
  const r = await sbx(['create', 'shell'], opts(ws));
  assert.equal(r.code, 77, r.stderr);
  assert.match(r.stderr, what);
  assert.match(r.stderr, new RegExp(`sbx trust ${ws}`));
  assert.equal((await containersOf(ws)).length, 0, 'nothing was created');
};

describe('workspace files are used only as approved', { timeout: 600_000 }, () => {
  it('a new settings file is refused without a terminal, shown with what it allows; sbx trust approves it', async () => {
    const ws = await workspace();
    settings(ws, { network: { allowedDomains: ['api.example.test'] } });
    await refused(ws, /\.sbx\/settings\.json \(new\)\n {4}- allows hosts: api\.example\.test/);
    const t = await sbx(['trust', '--json'], opts(ws));
    assert.equal(t.code, 0, t.stderr);
    const trusted = JSON.parse(t.stdout);
    assert.equal(trusted.workspace, ws);
    assert.deepEqual(trusted.files, ['.sbx/settings.json']);
    // Kept outside the workspace, in the config folder.
    assert.match(readFileSync(join(xdg, 'sbx', 'trust.json'), 'utf8'), /settings\.json/);
    // Approved: used without a question, and its policy applies.
    const made = await sbx(['create', 'shell', '--json'], opts(ws));
    assert.equal(made.code, 0, made.stderr);
    const inspected = JSON.parse((await sbx(['inspect', '--json'], opts(ws))).stdout);
    assert.deepEqual(inspected.policy.allow, ['api.example.test']);
    await sbx(['rm', '-f', ws], opts(ws));
  });

  it('a changed file, and a file in a renamed folder, need approval again; the approved content does not', async () => {
    const ws = await workspace();
    settings(ws, { network: { deniedDomains: ['x.example.test'] } });
    assert.equal((await sbx(['trust'], opts(ws))).code, 0);
    settings(ws, { network: { allowedDomains: ['wide.example.test'] } });
    await refused(
      ws,
      /settings\.json \(changed since you approved it\)\n {4}- allows hosts: wide\.example\.test/,
    );
    // The folder renamed away and a new one made: its file is judged by its content.
    settings(ws, { network: { deniedDomains: ['x.example.test'] } });
    renameSync(join(ws, '.sbx'), join(ws, '.sbx-old'));
    settings(ws, { network: { allowedDomains: ['host.docker.internal'] } });
    await refused(ws, /allows hosts: host\.docker\.internal/);
    // Back to the approved content: accepted.
    settings(ws, { network: { deniedDomains: ['x.example.test'] } });
    const ok = await sbx(['create', 'shell'], opts(ws));
    assert.equal(ok.code, 0, ok.stderr);
    await sbx(['rm', '-f', ws], opts(ws));
    // --revoke forgets it.
    assert.equal((await sbx(['trust', '--revoke'], opts(ws))).code, 0);
    await refused(ws, /settings\.json \(new\)/);
  });

  it("a dev container's files are approved together, and a changed Dockerfile needs approval again", async () => {
    const ws = await workspace();
    mkdirSync(join(ws, '.devcontainer'));
    writeFileSync(
      join(ws, '.devcontainer', 'devcontainer.json'),
      JSON.stringify({
        build: { dockerfile: 'Dockerfile' },
        mounts: ['source=/etc,target=/host-etc,type=bind'],
      }),
    );
    writeFileSync(join(ws, '.devcontainer', 'Dockerfile'), 'FROM debian:trixie-slim\n');
    await refused(ws, /devcontainer\.json \(new\)\n(.*\n)* {4}- mounts the host folder \/etc at \/host-etc/);
    const t = await sbx(['trust', '--json'], opts(ws));
    assert.equal(t.code, 0, t.stderr);
    assert.deepEqual(JSON.parse(t.stdout).files.sort(), [
      '.devcontainer/Dockerfile',
      '.devcontainer/devcontainer.json',
    ]);
    writeFileSync(join(ws, '.devcontainer', 'Dockerfile'), 'FROM debian:trixie-slim\nRUN echo changed\n');
    await refused(ws, /\.devcontainer\/Dockerfile \(changed since you approved it\)/);
  });

  it('a settings file that is a symlink is refused, whatever it points at', async () => {
    const ws = await workspace();
    const outside = mkdtempSync(join(tmpdir(), 'sbx-outside-'));
    writeFileSync(join(outside, 'settings.json'), '{}');
    mkdirSync(join(ws, '.sbx'));
    symlinkSync(join(outside, 'settings.json'), join(ws, '.sbx', 'settings.json'));
    const r = await sbx(['create', 'shell'], opts(ws));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /is a symlink/);
    assert.equal((await containersOf(ws)).length, 0);
  });

  it('on a terminal, a new file is shown and asked about: no creates nothing, yes approves and creates', {
    skip: NO_TMUX,
  }, async () => {
    const ws = await workspace();
    settings(ws, { network: { allowedDomains: ['asked.example.test'] } });
    const { line, waitFor, open, kill } = terminal(`sbx-trust-${process.pid}`);
    open(ws, 160, 40);
    try {
      line(
        `export XDG_CONFIG_HOME=${xdg} SBX_LABELS=${TEST_LABEL}=${RUN_ID} SBX_STATE_PREFIX=${STATE_PREFIX} SBX_PROXY_NAME=${PROXY}; unset SBX_CONFIG_DIR`,
      );
      line(`node ${BIN} create shell; echo "exit=$?"`);
      await waitFor(
        /allows hosts: asked\.example\.test[\s\S]*Approve these versions and use them\? \[y\/N\]/,
      );
      line('n');
      await waitFor(/Not approved[\s\S]*exit=77/, 60_000, true);
      assert.equal((await containersOf(ws)).length, 0, 'nothing was created');
      line(`clear; node ${BIN} create shell; echo "exit=$?"`);
      await waitFor(/\[y\/N\]/);
      line('y');
      await waitFor(/exit=0/, 300_000);
      assert.equal((await containersOf(ws)).length, 1);
      // Approved: the next creation asks nothing.
      assert.equal((await sbx(['rm', '-f', ws], opts(ws))).code, 0);
      assert.equal((await sbx(['create', 'shell'], opts(ws))).code, 0);
      await sbx(['rm', '-f', ws], opts(ws));
    } finally {
      kill();
    }
  });
});
