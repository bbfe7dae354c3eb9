/**
 * A small OCI distribution client for artifacts that are not images (dev container features): the
 * manifest of a tag, then one layer, with the anonymous token flow registries such as ghcr.io ask
 * for. Through the host's HTTP(S)_PROXY/NO_PROXY and with sbx's extra CA certificates; plain HTTP only
 * for a registry on loopback (localhost, 127.0.0.1, [::1]), as other OCI tools allow.
 */
import { createHash } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { gunzipSync } from 'node:zlib';
import { log } from '../shared/log.js';

const debug = log('registry');

export interface ArtifactRef {
  /** host[:port] */
  registry: string;
  repository: string;
  /** A tag, or a digest (sha256:…). */
  reference: string;
}

export interface Artifact {
  /** The layer's digest (sha256:…), checked against its content. */
  digest: string;
  /** The layer, uncompressed (a tar). */
  tar: Buffer;
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];

/** Where a registry is on this machine: then plain HTTP is allowed (and no proxy is used). */
export const isLoopbackRegistry = (registry: string) =>
  /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i.test(registry);

interface Manifest {
  layers?: Array<{ mediaType?: string; digest?: string }>;
}

type Fetch = (url: string, headers: Record<string, string>) => Promise<Response>;

async function client(caPems: string[], loopback: boolean): Promise<Fetch> {
  const { Agent, EnvHttpProxyAgent, fetch } = await import('undici');
  const ca = caPems.length > 0 ? [...rootCertificates, ...caPems] : undefined;
  // EnvHttpProxyAgent hands its options to the Agent (connect) and to the ProxyAgents (requestTls).
  const tls = ca ? { connect: { ca }, requestTls: { ca } } : {};
  const dispatcher = loopback
    ? new Agent()
    : new EnvHttpProxyAgent(tls as ConstructorParameters<typeof EnvHttpProxyAgent>[0]);
  return async (url, headers) => {
    debug('GET %s', url);
    // A registry that accepts the connection and then hangs must not hang sbx run.
    const res = await fetch(url, {
      headers,
      dispatcher,
      redirect: 'follow',
      signal: AbortSignal.timeout(120_000),
    });
    debug('%s: %d', url, res.status);
    return res as unknown as Response;
  };
}

/** The token an anonymous client gets for pulling, from the realm a 401's WWW-Authenticate names. */
async function anonymousToken(get: Fetch, challenge: string): Promise<string | undefined> {
  if (!/^Bearer\s/i.test(challenge)) return undefined;
  const params: Record<string, string> = {};
  for (const m of challenge.matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!.toLowerCase()] = m[2]!;
  if (!params.realm) return undefined;
  const url = new URL(params.realm);
  if (params.service) url.searchParams.set('service', params.service);
  if (params.scope) url.searchParams.set('scope', params.scope);
  const res = await get(url.toString(), {});
  if (!res.ok) throw new Error(`the registry's token service ${url.origin} answered ${res.status}`);
  const body = (await res.json()) as { token?: string; access_token?: string };
  return body.token ?? body.access_token;
}

/**
 * Fetches an artifact's (first, or devcontainers-typed) layer: its manifest, then the blob, whose
 * sha256 is checked. `have(digest)` lets a cached layer skip the download (then tar is empty).
 */
export async function fetchArtifactLayer(
  ref: ArtifactRef,
  options: { caCerts: string[]; mediaType?: string; have?: (digest: string) => boolean },
): Promise<Artifact> {
  const loopback = isLoopbackRegistry(ref.registry);
  const get = await client(options.caCerts, loopback);
  const base = `${loopback ? 'http' : 'https'}://${ref.registry}/v2/${ref.repository}`;
  let auth: Record<string, string> = {};
  const request = async (url: string, headers: Record<string, string>) => {
    let res = await get(url, { ...headers, ...auth });
    const challenge = res.headers.get('www-authenticate');
    if (res.status === 401 && challenge && !auth.Authorization) {
      const token = await anonymousToken(get, challenge);
      if (token) {
        auth = { Authorization: `Bearer ${token}` };
        res = await get(url, { ...headers, ...auth });
      }
    }
    if (!res.ok) throw new Error(`${url} answered ${res.status} ${res.statusText}`.trim());
    return res;
  };

  const manifestRes = await request(`${base}/manifests/${ref.reference}`, {
    Accept: MANIFEST_TYPES.join(', '),
  });
  const manifest = (await manifestRes.json()) as Manifest;
  const layers = manifest.layers ?? [];
  const layer = layers.find((l) => l.mediaType === options.mediaType) ?? layers[0];
  if (!layer?.digest || !/^sha256:[0-9a-f]{64}$/.test(layer.digest))
    throw new Error(`the manifest of ${ref.repository}:${ref.reference} names no layer with a sha256 digest`);
  if (options.have?.(layer.digest)) return { digest: layer.digest, tar: Buffer.alloc(0) };

  const blob = Buffer.from(await (await request(`${base}/blobs/${layer.digest}`, {})).arrayBuffer());
  const actual = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  if (actual !== layer.digest)
    throw new Error(`the layer ${layer.digest} arrived with the content of ${actual} (altered in transit?)`);
  const gzipped = blob[0] === 0x1f && blob[1] === 0x8b;
  return { digest: layer.digest, tar: gzipped ? gunzipSync(blob) : blob };
}
