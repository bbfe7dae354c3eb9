import { BaseCommand } from '../src/cli/base-command.js';
import { type Check, runChecks } from '../src/sandbox/doctor.js';

const MARK = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

export default class Doctor extends BaseCommand {
  static override description =
    `Check everything sbx run depends on and report it in one go: the engine (reachable, version and API, socket or DOCKER_HOST in use, rootless or Podman), free disk for images, the configuration, extra CA certificates, and whether the templates are built.

Exits non-zero when something blocks sbx run (with the exit code of that failure), each failure with its fix.`;

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %>', description: 'Is this machine ready?' },
    {
      command: 'DOCKER_HOST=tcp://build-box:2376 <%= config.bin %> <%= command.id %> --json',
      description: 'Check a remote engine, as JSON.',
    },
  ];

  static override summary = 'Check that this machine can run sandboxes, with a fix for each problem.';

  static override toleratesBrokenConfig = true;

  async run(): Promise<{ ok: boolean; checks: Check[] }> {
    await this.parse(Doctor);
    const checks = await runChecks(process.cwd());
    if (!this.jsonEnabled()) {
      for (const c of checks) {
        this.log(`${MARK[c.status]}  ${c.name}: ${c.detail}`);
        if (c.fix) this.log(`      fix: ${c.fix}`);
      }
    }
    const failure = checks.find((c) => c.status === 'fail');
    if (failure) process.exitCode = failure.exitCode ?? 1;
    return { ok: !failure, checks };
  }
}
