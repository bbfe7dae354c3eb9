import { Command, Flags } from '@oclif/core';
import { configuredEngine, readConfig } from '../config/config.js';
import { chooseEngine } from '../engine/connection.js';
import { EXIT_CODES, SbxError, usageError } from '../shared/errors.js';
import { debugEnabled, enableDebug } from '../shared/log.js';
import { splitAtDashes } from './args.js';
import { describeError, errorText } from './render.js';

/**
 * Owns what every sbx command shares: --debug, error rendering and exit codes. Commands throw
 * SbxError for anything a user can act on; anything else is reported as an internal error.
 */
export abstract class BaseCommand extends Command {
  /**
   * Whether the command still runs when the configuration file is broken (it shows the path or the
   * problem itself); every other command stops there with the file's path and what is wrong.
   */
  static toleratesBrokenConfig = false;

  static override baseFlags = {
    context: Flags.string({
      description: 'Docker CLI context of the engine to use (see `docker context ls`).',
      helpGroup: 'GLOBAL',
      exclusive: ['host'],
    }),
    debug: Flags.boolean({
      description: 'Show debug logs (engine calls) and stack traces of errors.',
      helpGroup: 'GLOBAL',
    }),
    host: Flags.string({
      char: 'H',
      description:
        'Engine to use: unix:///path, tcp://host:port or ssh://user@host. Default: config engine.host, DOCKER_HOST, the Docker context, the local Docker or Podman socket.',
      helpGroup: 'GLOBAL',
    }),
  };

  override async init(): Promise<void> {
    // Before any command touches the engine (and before the flags are parsed, which each command
    // does itself): which engine, and --debug. Arguments after -- belong to the agent.
    const { own } = splitAtDashes(this.argv);
    if (own.includes('--debug')) enableDebug();
    const value = (...names: string[]) => {
      for (const [i, arg] of own.entries()) {
        if (names.includes(arg)) return own[i + 1];
        const eq = names.find((n) => n.startsWith('--') && arg.startsWith(`${n}=`));
        if (eq) return arg.slice(eq.length + 1);
      }
      return undefined;
    };
    const host = value('--host', '-H');
    const context = value('--context');
    if (host || context) chooseEngine(host ? { host, from: '--host' } : { context, from: '--context' });
    else {
      const tolerant = (this.constructor as typeof BaseCommand).toleratesBrokenConfig;
      chooseEngine(
        configuredEngine(await readConfig().catch((err) => (tolerant ? {} : Promise.reject(err)))),
      );
    }
    await super.init();
  }

  /** Writes a warning line to stderr, in the same shape everywhere. */
  override warn(input: string | Error): string | Error {
    process.stderr.write(`Warning: ${typeof input === 'string' ? input : input.message}\n`);
    return input;
  }

  override async catch(err: Error & { oclif?: { exit?: number } }): Promise<void> {
    // oclif's own exits (this.exit) pass through untouched.
    if (err.constructor?.name === 'ExitError') throw err;
    const debug = debugEnabled();
    let { text, exitCode } = describeError(err, debug);
    if (!(err instanceof SbxError) && err.oclif?.exit === 2) {
      // oclif's own errors (flag and argument parsing, this.error) all carry exit 2: usage.
      exitCode = EXIT_CODES.usage;
      const message = err.message
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !/See more help/.test(l))
        .join(' ')
        .replace(/ Note: .*$/, '');
      text = errorText(usageError(message, `see \`sbx ${this.id?.replaceAll(':', ' ') ?? ''} --help\`.`));
    }
    process.stderr.write(`${text}\n`);
    if (debug) process.stderr.write(`${formatCauses(err)}\n`);
    process.exitCode = exitCode;
    this.exit(exitCode);
  }
}

function formatCauses(err: unknown): string {
  const lines: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current && depth < 5; depth++) {
    lines.push(
      depth === 0
        ? String((current as Error).stack ?? current)
        : `Caused by: ${String((current as Error).stack ?? current)}`,
    );
    current = (current as { cause?: unknown }).cause;
  }
  return lines.join('\n');
}
