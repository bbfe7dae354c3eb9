import type Docker from 'dockerode';
import { log } from '../shared/log.js';
import { currentEndpoint, engine, toEngineError } from './connection.js';

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

export const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

/**
 * "No such object" (404) as undefined instead of an error. Podman answers 500 "... does not exist in
 * database: no such container" when an object goes while it is being looked up (a name found, then
 * its object removed by another caller): gone all the same.
 */
export async function orMissing<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    if (statusOf(err) === 500 && /does not exist in database/.test(String((err as Error).message)))
      return undefined;
    throw err;
  }
}

/** Like call, but "no such object" is undefined instead of an error (see orMissing). */
export const callOrMissing = <T>(what: string, fn: (docker: Docker) => Promise<T>): Promise<T | undefined> =>
  orMissing(call(what, fn));
