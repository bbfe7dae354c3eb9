import { createRequire } from 'node:module';
import type { Debug } from 'debug';

/**
 * Debug logging behind the `sbx:*` namespace (DEBUG=sbx:* or --debug). Never log secret values.
 * The `debug` package is loaded only once debugging is on (DEBUG set, or enableDebug): a reattach
 * or `sbx ls` without it does not pay for its start-up.
 */
let lib: Debug | undefined;
const load = (): Debug => {
  lib ??= createRequire(import.meta.url)('debug') as Debug;
  return lib;
};
const on = () => lib !== undefined || Boolean(process.env.DEBUG);

export const log = (namespace: string) => {
  let logger: ((formatter: unknown, ...args: unknown[]) => void) | undefined;
  return (formatter: unknown, ...args: unknown[]): void => {
    if (!on()) return;
    logger ??= load()(`sbx:${namespace}`);
    logger(formatter, ...args);
  };
};

export function enableDebug(): void {
  load().enable(process.env.DEBUG ? `${process.env.DEBUG},sbx:*` : 'sbx:*');
}

export const debugEnabled = () => on() && load().enabled('sbx:cli');
