import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, PROXY, RUN_ID, STATE_PREFIX, sbx, TEST_LABEL, workspace } from '../helpers/cli.js';
import { cleanupTestResources, until } from '../helpers/engine.js';
import { hasTmux, NO_TMUX, terminal } from '../helpers/terminal.js';

/**
 * Ending sbx ends what it started in the sandbox: a signal to sbx (SIGINT, SIGTERM, SIGHUP), or its
 * parent dying, reaches the command it runs there, which is killed after the grace period (3 s);
 * a command started with -d keeps running. The command: a shell that writes `started-N` in the
 * workspace, traps TERM (writing `term-N`), and waits on `sleep 30N` (which, started with `&` by a
 * shell without job control, ignores SIGINT: only the kill after the grace period ends it then).
 */
const ENV = {
  ...process.env,
  SBX_LABELS: `${TEST_LABEL}=${RUN_ID}`,
  SBX_STATE_PREFIX: STATE_PREFIX,
  SBX_PROXY_NAME: PROXY,
};

const script = (n: number) =>
  `echo $$ > started-${n}; trap 'echo term > term-${n}; exit 143' TERM; sleep 30${n} & wait`;

/** Whether `sleep 30N` runs in the sandbox (pgrep there: 0 found, 1 none). */
async function sleeping(ws: string, n: number): Promise<boolean> {
  const r = await sbx(['exec', '.', '--', 'pgrep', '-f', `^sleep 30${n}$`], { cwd: ws });
  assert.ok(r.code === 0 || r.code === 1, `pgrep failed: ${r.code} ${r.stderr}`);
  return r.code === 0;
}

const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });

const GRACE_MS = 3000;

describe('signals: ending sbx ends the command it started in the sandbox', { timeout: 600_000 }, () => {
  let ws = '';
  before(async () => {
    ws = await workspace();
    const r = await sbx(['run', 'shell', '--', 'true'], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await sbx(['rm', '-f', '.'], { cwd: ws });
    await cleanupTestResources();
  });

  const cases: Array<[NodeJS.Signals, number, string[]]> = [
    ['SIGINT', 1, ['run', 'shell', '--', 'sh', '-c', script(1)]],
    ['SIGTERM', 2, ['exec', '.', '--', 'sh', '-c', script(2)]],
    ['SIGHUP', 3, ['exec', '.', '--', 'sh', '-c', script(3)]],
  ];
  for (const [signal, n, args] of cases) {
    it(`${signal} to \`sbx ${args[0]}\` without a terminal: the command gets it, and is gone within the grace period`, async () => {
      const child = spawn(process.execPath, [BIN, ...args], { cwd: ws, env: ENV, stdio: 'ignore' });
      const done = exited(child);
      await until('the command to start', async () => existsSync(join(ws, `started-${n}`)));
      assert.ok(await sleeping(ws, n));
      const sent = Date.now();
      child.kill(signal);
      const { code } = await done;
      const took = Date.now() - sent;
      assert.ok(took < GRACE_MS + 5000, `sbx took ${took} ms to end`);
      assert.equal(code, 128 + { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[signal as 'SIGHUP']!);
      assert.equal(await sleeping(ws, n), false, `sleep 30${n} still runs in the sandbox`);
      if (signal === 'SIGTERM') assert.equal(readFileSync(join(ws, `term-${n}`), 'utf8'), 'term\n');
    });
  }

  it('a killed parent (kill -9 of the shell that started sbx): sbx notices and ends the command', async () => {
    const n = 4;
    const parent = spawn(
      'sh',
      ['-c', `"$0" "$1" exec . -- sh -c "$2" & echo $! > sbx-pid; wait`, process.execPath, BIN, script(n)],
      { cwd: ws, env: ENV, stdio: 'ignore' },
    );
    await until('the command to start', async () => existsSync(join(ws, `started-${n}`)));
    const pid = Number(readFileSync(join(ws, 'sbx-pid'), 'utf8'));
    assert.ok(await sleeping(ws, n));
    parent.kill('SIGKILL');
    await until(
      'sbx to end',
      async () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      GRACE_MS + 8000,
    );
    assert.equal(await sleeping(ws, n), false, `sleep 30${n} still runs in the sandbox`);
    assert.equal(readFileSync(join(ws, `term-${n}`), 'utf8'), 'term\n');
  });

  it('with -d the command keeps running; a signal to another sbx in the same sandbox leaves it alone', async () => {
    const n = 5;
    const r = await sbx(['run', '-d', 'shell', '--', 'sh', '-c', script(n)], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    await until('the command to start', async () => existsSync(join(ws, `started-${n}`)));
    const child = spawn(process.execPath, [BIN, 'exec', '.', '--', 'sh', '-c', script(6)], {
      cwd: ws,
      env: ENV,
      stdio: 'ignore',
    });
    const done = exited(child);
    await until('the second command to start', async () => existsSync(join(ws, 'started-6')));
    child.kill('SIGTERM');
    await done;
    assert.equal(await sleeping(ws, 6), false);
    assert.ok(await sleeping(ws, n), 'the -d command was ended');
    assert.ok(!existsSync(join(ws, `term-${n}`)));
  });

  it('on a terminal (tmux): closing the terminal (SIGHUP) ends the command', { skip: NO_TMUX }, async () => {
    if (!hasTmux) return;
    const n = 7;
    const term = terminal(`sbx-signals-${RUN_ID}`);
    try {
      term.open(ws);
      const vars = ['SBX_LABELS', 'SBX_STATE_PREFIX', 'SBX_PROXY_NAME']
        .map((k) => `${k}='${ENV[k as keyof typeof ENV]}'`)
        .join(' ');
      writeFileSync(join(ws, `script-${n}.sh`), script(n));
      term.line(`${vars} '${process.execPath}' '${BIN}' exec -t . -- sh script-${n}.sh`);
      await until('the command to start', async () => existsSync(join(ws, `started-${n}`)));
      assert.ok(await sleeping(ws, n));
      term.kill();
      await until('the command to end', async () => !(await sleeping(ws, n)), GRACE_MS + 8000);
    } finally {
      term.kill();
    }
  });
});
