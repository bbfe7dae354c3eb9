import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/cli.js';

describe('npm run bench (smoke: one run of each, so it cannot rot)', { timeout: 600_000 }, () => {
  it('measures every section and writes the figures with their ratios', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sbx-bench-')), 'bench.json');
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'dist', 'bench', 'bench.js'), '--quick', '--out', out],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^\| what \| sbx \| baseline \| ratio \| budget \|$/m);
    const results = JSON.parse(readFileSync(out, 'utf8'));
    const whats = results.figures.map((f: { what: string }) => f.what).join('\n');
    for (const what of [
      /sbx --version/,
      /sbx ls \(\d+ sandboxes\) vs node/,
      /reattach/,
      /cold/,
      /template no-op/,
      /first screen/,
      /cold with --docker/,
      /docker run --rm IMAGE true inside a --docker sandbox/,
    ])
      assert.match(whats, what);
    for (const f of results.figures) assert.ok(f.sbx > 0 && f.baseline > 0 && f.ratio > 0, JSON.stringify(f));
    assert.equal(results.templateNoop.buildCallsOnRun, 0, 'an unchanged template is not built');
    for (const s of Object.values(results.scale) as Array<{ failures: number }>) assert.equal(s.failures, 0);
    assert.deepEqual(
      (Object.values(results.scale) as Array<{ containers: number }>).map((s) => s.containers),
      [2, 1],
    );
    assert.ok(results.footprint.diskPerIdleSandboxBytes >= 0);
    assert.ok(results.footprint.sbxPeakRssDuringAttachBytes > 0);
  });
});
