import { allUsersFlag } from '../src/cli/args.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { ago, bytes, table } from '../src/cli/render.js';
import { type DiskReport, diskReport } from '../src/sandbox/disk.js';

export default class Df extends BaseCommand {
  static override description =
    `Show the disk space sbx holds on the engine, from the engine's own accounting (/system/df): each sandbox (its writable layer, its volumes, its image, state, when it was last used), the template images (current for today's templates, superseded by a template change, saved with \`sbx save\`), your login volumes (and old shared state volumes) and workspace-copy volumes, the egress proxy, and totals. Sandboxes are yours only (the ones you made); --all-users shows every host user's and their login volumes. Image layers shared by several images and sandboxes are counted once; SHARED says how much of an image is shared.

With SBX_LABELS set, only what carries those labels is shown.`;

  static override enableJsonFlag = true;

  static override flags = { ...allUsersFlag };

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %>', description: 'What sbx holds, in one table.' },
    {
      command: '<%= config.bin %> <%= command.id %> --json',
      description: 'The same as JSON (sizes in bytes).',
    },
  ];

  static override summary = 'Show the disk space sbx holds.';

  async run(): Promise<DiskReport> {
    const { flags } = await this.parse(Df);
    const report = await diskReport({ allUsers: flags['all-users'] });
    if (this.jsonEnabled()) return report;
    const rows: string[][] = [['KIND', 'NAME', 'SIZE', 'SHARED', 'STATE', 'DETAIL']];
    for (const s of report.sandboxes) {
      rows.push([
        'sandbox',
        s.name,
        bytes(s.writable),
        '-',
        s.state,
        `image ${s.image}, last used ${s.state === 'stopped' ? ago(s.lastUsed) : 'now'}`,
      ]);
      for (const v of s.volumes) rows.push(['  volume', v.name, bytes(v.size), '-', '', 'see volumes']);
    }
    for (const i of report.images)
      rows.push([
        'image',
        i.tags[0] ?? i.id.slice(7, 19),
        bytes(i.size),
        bytes(i.sharedSize),
        i.status,
        i.sandboxes.length ? `used by ${i.sandboxes.join(', ')}` : 'unused',
      ]);
    for (const v of report.volumes)
      rows.push(['volume', v.name, bytes(v.size), '-', v.inUse > 0 ? 'in use' : 'unused', v.kind]);
    if (report.proxy)
      rows.push(['proxy', report.proxy.name, bytes(report.proxy.writable), '-', report.proxy.state, '']);
    this.log(table(rows));
    const t = report.totals;
    this.log(
      `\nTotal ${bytes(t.total)}: images ${bytes(t.images)} (layers counted once; ${bytes(t.imagesShared)} shared between images), sandboxes ${bytes(t.sandboxes)}, volumes ${bytes(t.volumes)}, proxy ${bytes(t.proxy)}.`,
    );
    if (report.images.some((i) => i.status === 'superseded' || i.status === 'dangling'))
      this.log('Superseded images can be removed with `sbx prune`.');
    return report;
  }
}
