import type Docker from 'dockerode';
import { log } from '../cli/log.js';
import { engine, toEngineError } from './connection.js';

const debug = log('engine');

/** Runs one engine call with "doing X" / "did X" debug lines and engine errors mapped to sbx errors. */
export async function call<T>(what: string, fn: (docker: Docker) => Promise<T>): Promise<T> {
  const { docker, endpoint } = await engine();
  debug('%s', what);
  try {
    const result = await fn(docker);
    debug('done: %s', what);
    return result;
  } catch (err) {
    debug('failed: %s: %s', what, (err as Error).message);
    throw toEngineError(err, endpoint);
  }
}

export const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

/** Like call, but "no such object" (404) is undefined instead of an error. */
export async function callOrMissing<T>(
  what: string,
  fn: (docker: Docker) => Promise<T>,
): Promise<T | undefined> {
  try {
    return await call(what, fn);
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}
