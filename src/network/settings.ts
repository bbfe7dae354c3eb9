import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { configDir } from '../config/config.js';
import { approvedHash, sha256, type TrustItem, untrustedError } from '../config/trust.js';
import { SbxError, usageError } from '../shared/errors.js';
import { readInside } from '../shared/workspace-file.js';
import { type Policy, type PolicyMode, patternProblem, requestRuleProblem } from './policy.js';

/** The settings file's shape (user: `<config dir>/settings.json`; workspace: `.sbx/settings.json`). */
export interface Settings {
  network?: { allowedDomains?: string[]; deniedDomains?: string[]; requestRules?: string[] };
  filesystem?: { denyRead?: string[]; denyWrite?: string[] };
}

/** The workspace's own settings file: read-only inside, so the agent cannot loosen its next policy. */
export const WORKSPACE_SETTINGS = join('.sbx', 'settings.json');

/** Workspace files that are read-only inside by default: git would run what is planted there on the host. */
export const DEFAULT_DENY_WRITE = ['.git/hooks', '.git/config'];

/**
 * The settings that apply to a workspace: the user's, then the workspace's own, this one only in the
 * version the user approved (`sbx trust`): read once, its hash checked, and those same bytes parsed.
 */
export function workspaceSettings(workspace: string): Settings[] {
  const own = workspaceSettingsFile(workspace);
  if (own) {
    const real = realpathSync(workspace);
    if (approvedHash(real, WORKSPACE_SETTINGS) !== own.item.hash)
      throw untrustedError(real, [
        { ...own.item, change: approvedHash(real, WORKSPACE_SETTINGS) ? 'changed' : 'new' },
      ]);
  }
  return [readSettings(join(configDir(), 'settings.json')), own?.settings ?? {}];
}

/**
 * The workspace's settings file as it is now (read without following a symlink, inside the
 * workspace), parsed, with its hash and what it would widen; undefined when there is none.
 */
export function workspaceSettingsFile(
  workspace: string,
): { settings: Settings; item: TrustItem } | undefined {
  const file = join(workspace, WORKSPACE_SETTINGS);
  const bytes = readInside(workspace, WORKSPACE_SETTINGS, 'The workspace settings file');
  if (!bytes) return undefined;
  const settings = parseSettings(bytes.toString('utf8'), file);
  return {
    settings,
    item: { path: WORKSPACE_SETTINGS, hash: sha256(bytes), shows: settingsShows(settings) },
  };
}

/** What a workspace settings file asks for, widening first. */
export function settingsShows(s: Settings): string[] {
  const list = (items: string[] | undefined) => (items ?? []).join(', ');
  return [
    ...(s.network?.allowedDomains?.length ? [`allows hosts: ${list(s.network.allowedDomains)}`] : []),
    ...(s.network?.requestRules?.length ? [`allows requests: ${list(s.network.requestRules)}`] : []),
    ...(s.network?.deniedDomains?.length ? [`denies hosts: ${list(s.network.deniedDomains)}`] : []),
    ...(s.filesystem?.denyRead?.length ? [`hides files: ${list(s.filesystem.denyRead)}`] : []),
    ...(s.filesystem?.denyWrite?.length ? [`makes read-only: ${list(s.filesystem.denyWrite)}`] : []),
  ].concat(s.network || s.filesystem ? [] : ['(asks for nothing)']);
}

/** Reads a settings file (absent: empty); anything malformed is an error naming the file and the key. */
export function readSettings(file: string): Settings {
  if (!existsSync(file)) return {};
  return parseSettings(readFileSync(file, 'utf8'), file);
}

/** Parses a settings file's text; anything malformed is an error naming the file and the key. */
export function parseSettings(text: string, file: string): Settings {
  const broken = (problem: string) =>
    new SbxError('config', `The settings file ${file} cannot be used: ${problem}.`, {
      hint: 'Fix it by hand: {"network": {"allowedDomains": [...], "deniedDomains": [...]}, "filesystem": {"denyRead": [...], "denyWrite": [...]}}.',
    });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw broken(`it is not valid JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw broken('it is not a JSON object');
  const shape: Record<string, string[]> = {
    network: ['allowedDomains', 'deniedDomains', 'requestRules'],
    filesystem: ['denyRead', 'denyWrite'],
  };
  for (const [section, value] of Object.entries(parsed)) {
    const keys = shape[section];
    if (!keys) throw broken(`"${section}" is not a section (valid: network, filesystem)`);
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw broken(`${section} must be an object`);
    for (const [key, list] of Object.entries(value)) {
      if (!keys.includes(key))
        throw broken(
          `"${section}.${key}" is not a setting (valid: ${keys.map((k) => `${section}.${k}`).join(', ')})`,
        );
      if (!Array.isArray(list) || list.some((item) => typeof item !== 'string' || !item))
        throw broken(`${section}.${key} must be a list of strings`);
      if (section === 'network') {
        for (const pattern of list as string[]) {
          const problem =
            key === 'requestRules'
              ? requestRuleProblem(pattern)
              : patternProblem(pattern, key === 'allowedDomains' ? 'allow' : 'deny');
          if (problem) throw broken(`${section}.${key} has "${pattern}": ${problem}`);
        }
      }
    }
  }
  return parsed as Settings;
}

/** Checks host patterns typed on the command line. */
export function checkPatterns(patterns: string[], list: 'allow' | 'deny', flag: string): string[] {
  for (const pattern of patterns) {
    const problem = patternProblem(pattern, list);
    if (problem)
      throw usageError(
        `Invalid ${flag} "${pattern}": ${problem}.`,
        'Patterns are a host (api.example.com), *.example.com for its subdomains, or either with :PORT.',
      );
  }
  return patterns;
}

/** Checks request rules typed on the command line. */
export function checkRequestRules(rules: string[]): string[] {
  for (const rule of rules) {
    const problem = requestRuleProblem(rule);
    if (problem)
      throw usageError(
        `Invalid --allow-request "${rule}": ${problem}.`,
        'Rules are METHOD HOST/PATH: "GET api.github.com/repos/my-org/**" (* any method; * in a path is one segment, ** any).',
      );
  }
  return rules;
}

/**
 * The policy of a new sandbox: the mode, and allow/deny lists merged from the settings files and the
 * flags (deny always beats allow when deciding). In deny mode the agent's own hosts are allowed too.
 */
export function effectivePolicy(options: {
  mode: PolicyMode;
  allowFlags: string[];
  blockFlags: string[];
  requestRules?: string[];
  agentHosts: string[];
  settings: Settings[];
  hostAddresses: string[];
}): Policy {
  const unique = (items: string[]) => [...new Set(items.map((i) => i.toLowerCase()))];
  const requestRules = [
    ...options.settings.flatMap((s) => s.network?.requestRules ?? []),
    ...(options.requestRules ?? []),
  ];
  return {
    mode: options.mode,
    allow: unique([
      ...(options.mode === 'deny' ? options.agentHosts : []),
      ...options.settings.flatMap((s) => s.network?.allowedDomains ?? []),
      ...options.allowFlags,
    ]),
    deny: unique([...options.settings.flatMap((s) => s.network?.deniedDomains ?? []), ...options.blockFlags]),
    hostAddresses: options.hostAddresses,
    ...(requestRules.length > 0 ? { requestRules } : {}),
  };
}
