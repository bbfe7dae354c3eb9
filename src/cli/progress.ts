import type { Sandbox, SandboxRequest } from '../sandbox/plan.js';
import type { SyncReport } from '../sync/sync.js';
import type { ImageReporter } from '../templates/build.js';
import { approver } from './confirm.js';

const KEEP_LINES = 40;

/**
 * Shows builds and pulls on stderr: on a terminal one line that is rewritten (current step and
 * elapsed time), otherwise plain lines, one per step. Keeps the current step's output so that a
 * failure can show it.
 */
export class ImageProgress implements ImageReporter {
  private what = '';
  private step = '';
  private output: string[] = [];
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly live = Boolean(process.stderr.isTTY) && process.env.TERM !== 'dumb',
  ) {}

  start(what: string): void {
    this.what = what;
    this.step = '';
    this.output = [];
    this.startedAt = Date.now();
    if (this.live) {
      this.timer = setInterval(() => this.render(), 250);
      this.timer.unref();
    } else {
      this.out.write(`sbx: building ${what}\n`);
    }
  }

  event(event: { stream?: string; status?: string; progress?: string; id?: string }): void {
    const text = event.stream ?? (event.status ? `${event.id ? `${event.id}: ` : ''}${event.status}` : '');
    for (const raw of text.split('\n')) {
      const line = raw.trimEnd();
      if (!line || line.startsWith(' ---> ')) continue;
      if (/^Step \d+\/\d+ : /.test(line)) {
        this.step = line;
        this.output = [];
        if (!this.live) this.out.write(`sbx:   ${line}\n`);
      } else {
        this.output.push(line);
        if (this.output.length > KEEP_LINES) this.output.shift();
      }
    }
    if (this.live) this.render();
  }

  end(ok: boolean): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const elapsed = this.elapsed();
    if (this.live) this.out.write('\r\x1b[2K');
    if (ok) {
      this.out.write(`sbx: built ${this.what} in ${elapsed}\n`);
      return;
    }
    this.out.write(
      `sbx: building ${this.what} failed after ${elapsed}${this.step ? ` at ${this.step}` : ''}\n`,
    );
    for (const line of this.output) this.out.write(`  | ${line}\n`);
  }

  private elapsed(): string {
    const s = Math.round((Date.now() - this.startedAt) / 1000);
    return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
  }

  private render(): void {
    const columns = this.out.columns || 80;
    const line = `sbx: building ${this.what} ${this.elapsed()}  ${this.step}`;
    this.out.write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
  }
}

/** A sync's lines on stderr: what it did, and on a terminal its progress on one rewritten line. */
export function syncProgress(out: NodeJS.WriteStream = process.stderr): SyncReport {
  const tty = Boolean(out.isTTY);
  return (line, final) => {
    if (final) out.write(`${tty ? '\r\x1b[K' : ''}sbx: ${line}\n`);
    else if (tty) out.write(`\r\x1b[Ksbx: ${line}`);
  };
}

/**
 * What `sbx run` shows on stderr while it makes or starts a sandbox: builds and pulls, the first sync,
 * the lifecycle commands' output, and the line that says which sandbox was created.
 */
export function runReports(
  agent: string,
): Pick<SandboxRequest, 'reporter' | 'syncReport' | 'hookOutput' | 'onCreated' | 'approve'> {
  return {
    ...approver(),
    reporter: new ImageProgress(),
    syncReport: syncProgress(),
    hookOutput: process.stderr,
    onCreated: (s: Sandbox) =>
      process.stderr.write(
        `sbx: created sandbox ${s.name} for ${agent} (${s.image})${s.devcontainer ? `, from the dev container ${s.devcontainer}` : ''}\n`,
      ),
  };
}
