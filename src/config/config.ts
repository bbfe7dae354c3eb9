import { homedir } from 'node:os';
import { join } from 'node:path';
import { SbxError } from '../cli/errors.js';

/** The user configuration, stored by conf as JSON and validated against SCHEMA on every read. */
export interface SbxConfig {
  /** Default template per agent: a template name, a folder path or an image reference. */
  templates?: Record<string, string>;
  /** A PEM file or a folder of them, trusted in template builds and sandboxes. "none" disables. */
  caCerts?: string;
}

const SCHEMA = {
  templates: {
    type: 'object',
    additionalProperties: { type: 'string', minLength: 1 },
  },
  caCerts: { type: 'string', minLength: 1 },
} as const;

/** Where sbx keeps its configuration and user templates. SBX_CONFIG_DIR overrides it. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SBX_CONFIG_DIR) return env.SBX_CONFIG_DIR;
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Preferences', 'sbx');
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'sbx');
}

export const configFile = () => join(configDir(), 'config.json');

let loaded: SbxConfig | undefined;

/**
 * Reads the configuration (conf is imported only when a command needs it). A broken file is an
 * error naming the file and the problem; it is never reset, so the user's settings are not lost.
 */
export async function readConfig(): Promise<SbxConfig> {
  if (loaded) return loaded;
  const { default: Conf } = await import('conf');
  try {
    const store = new Conf<SbxConfig>({
      projectName: 'sbx',
      cwd: configDir(),
      configName: 'config',
      schema: SCHEMA as never,
      clearInvalidConfig: false,
    });
    loaded = store.store;
    return loaded;
  } catch (err) {
    throw new SbxError(
      'config',
      `The configuration file ${configFile()} cannot be used: ${(err as Error).message}`,
      {
        cause: err,
        hint: `Fix or remove the file by hand (sbx never resets it, so your settings stay until you decide).`,
      },
    );
  }
}
