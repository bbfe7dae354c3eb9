import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { SbxError } from '../shared/errors.js';

/** Debian and Ubuntu keep locally added CA certificates here. */
export const HOST_LOCAL_CA_DIR = '/usr/local/share/ca-certificates';

export interface CaCert {
  /** File name used inside the image (always .crt, as update-ca-certificates expects). */
  name: string;
  pem: string;
}

/**
 * The extra CA certificates to trust: SBX_CA_CERTS, else the configured caCerts, else the host's
 * locally added ones (so a machine behind a TLS-intercepting proxy works without setup).
 * "none" turns the feature off. A configured path that does not exist is an error.
 */
export function extraCaCerts(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): CaCert[] {
  const explicit = env.SBX_CA_CERTS || configured;
  if (explicit === 'none') return [];
  if (explicit) {
    if (!existsSync(explicit)) {
      throw new SbxError(
        'notFound',
        `The CA certificates at ${explicit} (from ${env.SBX_CA_CERTS ? 'SBX_CA_CERTS' : 'config caCerts'}) do not exist.`,
        {
          hint: 'Point it at a PEM file or a folder of PEM files, or set it to "none".',
        },
      );
    }
    return readCerts(explicit);
  }
  return existsSync(HOST_LOCAL_CA_DIR) ? readCerts(HOST_LOCAL_CA_DIR) : [];
}

function readCerts(path: string): CaCert[] {
  const files = statSync(path).isDirectory() ? walk(path) : [path];
  const certs: CaCert[] = [];
  for (const file of files.sort()) {
    const pem = readFileSync(file, 'utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) continue;
    certs.push({ name: `${basename(file).replace(/\.(pem|crt|cer)$/i, '')}.crt`, pem });
  }
  return certs;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return walk(path);
    return /\.(pem|crt|cer)$/i.test(entry.name) ? [path] : [];
  });
}

const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];

/**
 * The host's proxy settings, passed into template builds when set. Sandboxes do not get them: their
 * way out is sbx's egress proxy, which goes on through the host's proxy (see upstreamProxy).
 */
export function proxyEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROXY_VARS) {
    const value = env[name];
    if (value) out[name] = value;
  }
  return out;
}

/**
 * The host's proxy, for sbx's egress proxy to chain to (a company's explicit proxy): HTTPS_PROXY,
 * else HTTP_PROXY (either case), with NO_PROXY's hosts reached directly.
 */
export function upstreamProxy(
  env: NodeJS.ProcessEnv = process.env,
): { url: string; noProxy: string[] } | undefined {
  const url = env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy;
  if (!url) return undefined;
  const noProxy = (env.NO_PROXY || env.no_proxy || '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  return { url: /^[a-z]+:\/\//i.test(url) ? url : `http://${url}`, noProxy };
}
