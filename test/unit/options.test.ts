import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SbxError } from '../../src/cli/errors.js';
import { bindOf, parseEnvArgs, parseEnvFile, parseVolume } from '../../src/sandbox/options.js';

describe('parseEnvArgs', () => {
  it('takes KEY=VALUE, and KEY from the host', () => {
    const { vars, unset } = parseEnvArgs(['A=1', 'B=x=y', 'HOSTVAR', 'MISSING', 'EMPTY='], { HOSTVAR: 'h' });
    assert.deepEqual(vars, [
      { name: 'A', value: '1' },
      { name: 'B', value: 'x=y' },
      { name: 'HOSTVAR', value: 'h' },
      { name: 'EMPTY', value: '' },
    ]);
    assert.deepEqual(unset, ['MISSING']);
  });

  it('refuses an invalid name, naming the argument', () => {
    assert.throws(
      () => parseEnvArgs(['1BAD=x']),
      (err: SbxError) => err.kind === 'usage' && err.message.includes('"1BAD=x"'),
    );
    assert.throws(
      () => parseEnvArgs(['=x']),
      (err: SbxError) => err.exitCode === 2,
    );
  });
});

describe('parseEnvFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-unit-'));

  it('reads KEY=VALUE lines, skips comments and blanks', () => {
    const file = join(dir, 'ok.env');
    writeFileSync(file, '# comment\n\nA=1\r\n  B=has spaces  \nFROMHOST\n');
    const { vars } = parseEnvFile(file, { FROMHOST: 'v' });
    assert.deepEqual(vars, [
      { name: 'A', value: '1' },
      { name: 'B', value: 'has spaces  ' },
      { name: 'FROMHOST', value: 'v' },
    ]);
  });

  it('refuses a bad line with its number and a missing file', () => {
    const file = join(dir, 'bad.env');
    writeFileSync(file, 'A=1\nB =2\n');
    assert.throws(() => parseEnvFile(file), /line 2/);
    assert.throws(
      () => parseEnvFile(join(dir, 'nope.env')),
      (err: SbxError) => err.kind === 'notFound',
    );
  });
});

describe('parseVolume', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-unit-'));

  it('resolves the host path and keeps the mode', () => {
    assert.deepEqual(parseVolume(`${dir}:/data:ro`), { host: dir, container: '/data', readOnly: true });
    assert.deepEqual(parseVolume('.:/w', dir), { host: dir, container: '/w', readOnly: false });
    assert.equal(bindOf(parseVolume(`${dir}:/data:ro`)), `${dir}:/data:ro`);
  });

  it('refuses bad syntax, a relative container path and a missing host path', () => {
    for (const bad of ['justone', `${dir}:/d:rx`, `${dir}:relative`, ':/d', 'a:b:c:d']) {
      assert.throws(
        () => parseVolume(bad),
        (err: SbxError) => err.kind === 'usage' && err.message.includes(bad),
        bad,
      );
    }
    assert.throws(
      () => parseVolume(`${dir}/missing:/d`),
      (err: SbxError) => err.kind === 'notFound',
    );
  });
});
