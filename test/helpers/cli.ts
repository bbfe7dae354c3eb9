import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (tests run from dist/test/...). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = join(ROOT, 'bin', 'run.js');

/** Every resource a test run creates carries this label; cleanup removes by it. */
export const TEST_LABEL = 'dev.sbx.test';
export const RUN_ID = process.env.SBX_TEST_RUN ?? `t${process.pid}`;
export const STATE_PREFIX = `sbx-test-${RUN_ID}-state-`;
/** The egress proxy of this run: tests may stop or replace it; a user's \`sbx-proxy\` is never touched. */
export const PROXY = `sbx-proxy-${RUN_ID}`;

/** The unprivileged host user the suite runs sbx as (made by test/run.sh; in the docker group). */
export const TEST_USER = { name: 'sbxtest', uid: 4242, gid: 4242, home: '/home/sbxtest' };

/** The skip reason of a test run as TEST_USER where that user does not exist here, else false. */
export const NO_TEST_USER = (() => {
  try {
    if (execFileSync('id', ['-u', TEST_USER.name]).toString().trim() === String(TEST_USER.uid)) return false;
  } catch {}
  return `the host user ${TEST_USER.name} (uid ${TEST_USER.uid}, docker group) is made by test/run.sh`;
})();

/** A command for inside a sandbox printing the HTTP status of the npm registry's ping through its proxy. */
export const REGISTRY_PING = [
  'curl',
  '-sS',
  '-o',
  '/dev/null',
  '-w',
  '%{http_code}',
  'https://registry.npmjs.org/-/ping',
];

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  asUser?: typeof TEST_USER;
  timeoutMs?: number;
}

/** Runs the built CLI as a user would, not on a terminal. */
export function sbx(args: string[], options: RunOptions = {}): Promise<Result> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    SBX_LABELS: `${TEST_LABEL}=${RUN_ID}`,
    // Agent state volumes of this run only: a developer's own logins are never touched by the suite.
    SBX_STATE_PREFIX: STATE_PREFIX,
    SBX_PROXY_NAME: PROXY,
    ...(options.asUser ? { HOME: options.asUser.home, USER: options.asUser.name } : {}),
    ...options.env,
  };
  return new Promise((resolvePromise, reject) => {
    // setpriv --init-groups keeps the user's supplementary groups (docker), which spawn's uid option drops.
    const user = options.asUser;
    const argv = user
      ? [
          'setpriv',
          `--reuid=${user.uid}`,
          `--regid=${user.gid}`,
          '--init-groups',
          process.execPath,
          BIN,
          ...args,
        ]
      : [process.execPath, BIN, ...args];
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: options.cwd ?? ROOT,
      env: env as NodeJS.ProcessEnv,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
    });
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** A fresh workspace folder (a git repository with an identity unless told otherwise). */
export async function workspace(
  options: { owner?: typeof TEST_USER; git?: boolean; parent?: string } = {},
): Promise<string> {
  const dir = realpathSync(mkdtempSync(join(options.parent ?? tmpdir(), 'sbx-ws-')));
  if (options.git !== false) {
    const { simpleGit } = await import('simple-git');
    const git = simpleGit(dir);
    await git.init();
    await git.addConfig('user.name', 'Ada Tester');
    await git.addConfig('user.email', 'ada@example.test');
  }
  if (options.owner) chownTree(dir, options.owner);
  return dir;
}

function chownTree(dir: string, owner: typeof TEST_USER): void {
  chownSync(dir, owner.uid, owner.gid);
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) chownTree(path, owner);
    else chownSync(path, owner.uid, owner.gid);
  }
}

/** Git on the host in one of the suite's repositories, as the user would run it. */
export const hostGit = (repo: string, ...args: string[]) =>
  execFileSync('git', ['-C', repo, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    .toString()
    .trim();

/** A workspace that is a git repository with one commit (a README). */
export async function repository(): Promise<string> {
  const repo = await workspace();
  writeFileSync(join(repo, 'README'), 'hello\n');
  hostGit(repo, 'add', 'README');
  hostGit(repo, 'commit', '-qm', 'first');
  return repo;
}
