import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { debugEnabled, enableDebug, log } from '../../src/shared/log.js';

const debugLoaded = () =>
  Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/debug/'));

describe('debug logging', () => {
  it('loads the debug package only once debugging is on (a reattach does not pay for it)', () => {
    delete process.env.DEBUG;
    log('test')('not shown: %s', 'debugging is off');
    assert.equal(debugEnabled(), false);
    assert.equal(debugLoaded(), false);
    enableDebug();
    assert.equal(debugEnabled(), true);
    assert.equal(debugLoaded(), true);
  });
});
