/**
 * The two commands people type most, answered without loading oclif when the command line is the
 * plain form: `sbx run AGENT [WORKSPACE] [-- ARGS]` reattaching to a sandbox that exists, and `sbx ls`.
 * Anything else (a flag, a sandbox to create, any error) returns undefined and the full command runs,
 * which also renders every error: the fast path never decides anything the full one would not.
 */
import { AGENTS, launchCommand } from '../agents/registry.js';
import { configuredEngine, readConfig } from '../config/config.js';
import { chooseEngine } from '../engine/connection.js';
import { inspectContainer } from '../engine/containers.js';
import { lastUsedOfAll, listSandboxes } from '../sandbox/discovery.js';
import { envVars } from '../sandbox/env.js';
import { resolveWorkspace, sandboxName } from '../sandbox/identity.js';
import { reattach } from '../sandbox/lifecycle.js';
import { runInSandbox } from './attach.js';
import { lsTable } from './render.js';

export async function fastPath(argv: string[]): Promise<number | undefined> {
  try {
    chooseEngine(configuredEngine(await readConfig()));
    if (argv[0] === 'run') return await fastRun(argv.slice(1));
    if (argv.length === 1 && argv[0] === 'ls') {
      const refs = await listSandboxes();
      process.stdout.write(`${lsTable(refs, await lastUsedOfAll(refs))}\n`);
      return 0;
    }
  } catch {
    // The full command runs instead, and says what went wrong.
  }
  return undefined;
}

async function fastRun(argv: string[]): Promise<number | undefined> {
  const split = argv.indexOf('--');
  const own = split === -1 ? argv : argv.slice(0, split);
  if (own.length < 1 || own.length > 2 || own.some((a) => a.startsWith('-'))) return undefined;
  const agent = AGENTS.find((a) => a.name === own[0]);
  if (!agent) return undefined;
  const workspace = resolveWorkspace(own[1]);
  const info = await inspectContainer(sandboxName(workspace));
  if (!info) return undefined;
  if ((await readConfig()).syncConfig) return undefined;
  const { vars, unset } = await envVars({});
  const sandbox = await reattach(info, {
    workspace,
    agent,
    template: undefined,
    volumes: [],
    ports: [],
    limits: {},
    name: undefined,
    credentials: undefined,
    security: {
      network: 'policy',
      policyMode: undefined,
      allowHosts: [],
      blockHosts: [],
      noSudo: false,
      mountDockerSocket: false,
    },
    version: '',
    reporter: { start() {}, event() {}, end() {} },
  });
  if (unset.length > 0)
    process.stderr.write(`Warning: not set on this host, so not passed: ${unset.join(', ')}\n`);
  for (const warning of sandbox.warnings) process.stderr.write(`Warning: ${warning}\n`);
  return runInSandbox({
    sandbox,
    agent,
    cmd: launchCommand(agent, split === -1 ? [] : argv.slice(split + 1)),
    vars,
    workdir: workspace,
    tty: 'auto',
    stdin: true,
    session: 'attach',
  });
}
