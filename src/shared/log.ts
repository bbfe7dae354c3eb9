import createDebug from 'debug';

/** Debug logging behind the `sbx:*` namespace (DEBUG=sbx:* or --debug). Never log secret values. */
export const log = (namespace: string) => createDebug(`sbx:${namespace}`);

export function enableDebug(): void {
  createDebug.enable(process.env.DEBUG ? `${process.env.DEBUG},sbx:*` : 'sbx:*');
}

export const debugEnabled = () => createDebug.enabled('sbx:cli');
