import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SbxError } from '../../src/shared/errors.js';
import {
  bindOf,
  formatBytes,
  parseCpus,
  parseDuration,
  parseEnvArgs,
  parseEnvFile,
  parseMemory,
  parsePidsLimit,
  parsePort,
  parseSandboxName,
  parseVolume,
} from '../../src/shared/parse.js';

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

describe('parsePort', () => {
  it('binds to loopback unless told, and takes 0 for a free port', () => {
    assert.deepEqual(parsePort('3000:80'), {
      hostIp: '127.0.0.1',
      hostPort: 3000,
      containerPort: 80,
      protocol: 'tcp',
    });
    assert.deepEqual(parsePort('8080'), {
      hostIp: '127.0.0.1',
      hostPort: 0,
      containerPort: 8080,
      protocol: 'tcp',
    });
    assert.deepEqual(parsePort('0.0.0.0:0:53/udp'), {
      hostIp: '0.0.0.0',
      hostPort: 0,
      containerPort: 53,
      protocol: 'udp',
    });
    assert.deepEqual(parsePort('[::1]:9000:9000'), {
      hostIp: '::1',
      hostPort: 9000,
      containerPort: 9000,
      protocol: 'tcp',
    });
  });
  it('refuses what is not a port mapping, naming the argument', () => {
    for (const bad of ['', 'x:80', '80:0', '70000:80', '1.2.3:80:80', '80/sctp', 'a:b:c:d', 'host:80:80']) {
      assert.throws(
        () => parsePort(bad),
        (err: SbxError) => err.kind === 'usage' && err.message.includes(`"${bad}"`),
        bad,
      );
    }
  });
});

describe('limits', () => {
  it('parses sizes and counts; 0 is no limit', () => {
    assert.equal(parseMemory('512m'), 512 * 2 ** 20);
    assert.equal(parseMemory('1.5g'), 1.5 * 2 ** 30);
    assert.equal(parseMemory('2GiB'), 2 * 2 ** 30);
    assert.equal(parseMemory('0'), 0);
    assert.equal(parseCpus('1.5'), 1.5);
    assert.equal(parseCpus('0'), 0);
    assert.equal(parsePidsLimit('4096'), 4096);
  });
  it('refuses nonsense and values no agent can live with', () => {
    for (const bad of ['lots', '10m', '-1g', '4x'])
      assert.throws(() => parseMemory(bad), /Invalid memory limit/, bad);
    for (const bad of ['-1', 'two', '0.001']) assert.throws(() => parseCpus(bad), /Invalid CPU limit/, bad);
    for (const bad of ['10', '1.5', 'many'])
      assert.throws(() => parsePidsLimit(bad), /Invalid process limit/, bad);
  });
  it('checks sandbox names against the engine rule', () => {
    assert.equal(parseSandboxName('review-2'), 'review-2');
    for (const bad of ['-x', 'a b', 'ü', ''])
      assert.throws(() => parseSandboxName(bad), /Invalid sandbox name/, bad);
  });
});

describe('parseDuration', () => {
  it('takes s, m, h, d, w and their combinations, as seconds', () => {
    assert.equal(parseDuration('90s'), 90);
    assert.equal(parseDuration('30m'), 1800);
    assert.equal(parseDuration('2h'), 7200);
    assert.equal(parseDuration('30d'), 2_592_000);
    assert.equal(parseDuration('1h30m'), 5400);
    assert.equal(parseDuration('1w'), 604_800);
  });
  it('refuses bare numbers, unknown units, zero and junk, naming the flag', () => {
    for (const bad of ['30', '3x', '0s', '', 'h', '1h junk'])
      assert.throws(
        () => parseDuration(bad, '--until'),
        (e: SbxError) => e.kind === 'usage' && e.message.includes('--until'),
        bad,
      );
  });
});

describe('formatBytes', () => {
  it('reads like docker, in binary units', () => {
    assert.equal(formatBytes(12), '12B');
    assert.equal(formatBytes(1536), '1.5KiB');
    assert.equal(formatBytes(8 * 2 ** 30), '8GiB');
  });
});
