import type Docker from 'dockerode';
import { log } from '../shared/log.js';
import { currentEndpoint, engine, toEngineError } from './connection.js';
import { isMissing } from './errors.js';

const debug = log('engine');

/** Runs one engine call with "doing X" / "did X" debug lines and engine errors mapped to sbx errors. */
export async function track<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const endpoint = currentEndpoint();
  debug('%s', what);
  try {
    const result = await fn();
    debug('done: %s', what);
    return result;
  } catch (err) {
    debug('failed: %s: %s', what, (err as Error).message);
    throw toEngineError(err, endpoint);
  }
}

/** track() for a call made with dockerode. */
export async function call<T>(what: string, fn: (docker: Docker) => Promise<T>): Promise<T> {
  const { docker } = await engine();
  return track(what, () => fn(docker));
}

/** "No such object" (see isMissing) as undefined instead of an error. */
export async function orMissing<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise;
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/** Like call, but "no such object" is undefined instead of an error (see orMissing). */
export const callOrMissing = <T>(what: string, fn: (docker: Docker) => Promise<T>): Promise<T | undefined> =>
  orMissing(call(what, fn));
