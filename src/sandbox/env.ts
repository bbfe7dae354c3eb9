import { readConfig } from '../config/config.js';
import { type EnvVar, parseEnvArgs, parseEnvFile } from '../shared/parse.js';

/**
 * The variables of one process: the config's `env`, then --env-file, then -e (later ones win).
 * Names asked for but unset on the host are returned so the command can say they were skipped.
 */
export async function envVars(flags: {
  env?: string[] | undefined;
  'env-file'?: string[] | undefined;
}): Promise<{ vars: EnvVar[]; unset: string[] }> {
  const vars: EnvVar[] = [];
  const unset: string[] = [];
  for (const parsed of [
    parseEnvArgs((await readConfig()).env ?? []),
    ...(flags['env-file'] ?? []).map((f) => parseEnvFile(f)),
    parseEnvArgs(flags.env ?? []),
  ]) {
    vars.push(...parsed.vars);
    unset.push(...parsed.unset);
  }
  return { vars, unset };
}
