/**
 * The commands people type most, answered without loading oclif when the command line is the plain
 * form: `sbx run AGENT [WORKSPACE] [-- ARGS]` (reattaching to the workspace's sandbox, or creating it
 * with the defaults), `sbx ls`, and `sbx template build [NAME...]` when nothing needs building.
 * Until something happens in a sandbox, anything unusual (a flag, any error) returns undefined and
 * the full command runs instead, deciding and reporting as it always does. From the creation or
 * reattach on (it may make or start the sandbox, run its postStartCommand, wait for its inner engine,
 * then launch the agent), nothing may run again: an error is rendered here, exactly as the full
 * command renders it, and its exit code returned.
 */
import { readFileSync } from 'node:fs';
import type { AgentSpec } from '../agents/registry.js';
import { configuredEngine, readConfig } from '../config/config.js';
import { chooseEngine } from '../engine/connection.js';
import { describeError, lsTable } from './render.js';

export async function fastPath(argv: string[]): Promise<number | undefined> {
  let launch: (() => Promise<number>) | undefined;
  try {
    chooseEngine(configuredEngine(await readConfig()));
    // Each form loads only its own modules (a reattach never loads the listing, nor `ls` the attach).
    if (argv.length === 1 && argv[0] === 'ls') {
      const { lastUsedOfAll, listSandboxes } = await import('../sandbox/discovery.js');
      const refs = await listSandboxes();
      process.stdout.write(`${lsTable(refs, await lastUsedOfAll(refs))}\n`);
      return 0;
    }
    if (argv[0] === 'template' && argv[1] === 'build') return await templatesUpToDate(argv.slice(2));
    if (argv[0] === 'run') launch = await prepareRun(argv.slice(1));
  } catch {
    // Nothing has happened in a sandbox yet: the full command runs instead, and says what went wrong.
    return undefined;
  }
  if (!launch) return undefined;
  try {
    return await launch();
  } catch (err) {
    // The sandbox may have started, the agent may have run: never again. Said as the full command says it.
    const { text, exitCode } = describeError(err, false);
    process.stderr.write(`${text}\n`);
    return exitCode;
  }
}

/**
 * `sbx template build [NAME...]` when every template named (default: every agent's) is already built
 * for its current files: the same lines as the full command, answered with one image inspection each.
 * Undefined when anything would be built (the full command builds it, with its progress).
 */
async function templatesUpToDate(names: string[]): Promise<number | undefined> {
  if (names.some((n) => n.startsWith('-'))) return undefined;
  const [{ agentNames, getAgent }, { builtTemplate, templateSpecFor }] = await Promise.all([
    import('../agents/registry.js'),
    import('../sandbox/template-image.js'),
  ]);
  const requested = names.length > 0 ? names : agentNames().map((a) => getAgent(a).template);
  const lines: string[] = [];
  for (const name of new Set(requested)) {
    const spec = agentNames().includes(name) ? await templateSpecFor(getAgent(name), undefined) : name;
    const image = await builtTemplate(spec, process.cwd());
    if (!image) return undefined;
    lines.push(`${spec}\t${image.ref}\tup to date\n`);
  }
  process.stdout.write(lines.join(''));
  return 0;
}

/**
 * Everything `sbx run` decides before touching an existing sandbox; returns the reattach and launch,
 * or undefined when the full command must decide.
 */
async function prepareRun(argv: string[]): Promise<(() => Promise<number>) | undefined> {
  const { own, rest } = (await import('./dashes.js')).splitAtDashes(argv);
  if (own.length < 1 || own.length > 2 || own.some((a) => a.startsWith('-'))) return undefined;
  const [
    { AGENTS, launchCommand },
    { inspectContainer },
    { envVars },
    { resolveWorkspace, sandboxName },
    { ensureSandbox, reattach },
    { plainRequest },
    { runInSandbox },
  ] = await Promise.all([
    import('../agents/registry.js'),
    import('../engine/containers.js'),
    import('../sandbox/env.js'),
    import('../sandbox/identity.js'),
    import('../sandbox/lifecycle.js'),
    import('../sandbox/plan.js'),
    import('./attach.js'),
  ]);
  const agent: AgentSpec | undefined = AGENTS.find((a) => a.name === own[0]);
  if (!agent) return undefined;
  const workspace = resolveWorkspace(own[1]);
  const info = await inspectContainer(sandboxName(workspace));
  if ((await readConfig()).syncConfig) return undefined;
  const { vars, unset } = await envVars({});
  return async () => {
    if (unset.length > 0)
      process.stderr.write(`Warning: not set on this host, so not passed: ${unset.join(', ')}\n`);
    // Starting a stopped sandbox (its postStartCommand, its inner engine) is already past the point
    // of no return: the full command would find it running and launch the agent despite the error.
    // So is creating one, with the defaults (one that fails before it starts removes what it made).
    const sandbox = info
      ? await reattach(info, { ...plainRequest(workspace, agent), hookOutput: process.stderr })
      : await ensureSandbox({
          ...plainRequest(workspace, agent, packageVersion()),
          ...(await import('./progress.js')).runReports(agent.name),
        });
    for (const warning of sandbox.warnings) process.stderr.write(`Warning: ${warning}\n`);
    return runInSandbox({
      sandbox,
      agent,
      cmd: launchCommand(agent, rest),
      vars,
      workdir: workspace,
      tty: 'auto',
      stdin: true,
      session: 'attach',
    });
  };
}

/** sbx's version, as oclif would give it (a new sandbox is labelled with it). */
function packageVersion(): string {
  return JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version;
}
