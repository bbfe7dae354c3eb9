/**
 * The suite's own stand-in for an OCI registry: the pull side of the distribution API (the /v2/
 * ping, manifests by tag or digest, blobs; GET and HEAD), over HTTP or HTTPS, optionally behind the
 * anonymous token flow registries such as ghcr.io use. It serves a folder laid out like an OCI image
 * layout: blobs/sha256/<hex> (manifests and configs are blobs too) and tags.json, `{ repository:
 * { tag: digest } }`. It imports only node's modules, so it runs in the test process (the dev
 * container test, on loopback) or in a test container (`node --input-type=module -e` of this file's
 * build, with REGISTRY_DIR, REGISTRY_PORT and, for HTTPS, REGISTRY_CERT and REGISTRY_KEY), where
 * every request is also printed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** Writes a blob into the folder and returns its descriptor's digest and size. */
export function putBlob(dir: string, content: Buffer | string): { digest: string; size: number } {
  const body = typeof content === 'string' ? Buffer.from(content) : content;
  const hex = createHash('sha256').update(body).digest('hex');
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'blobs', 'sha256', hex), body);
  return { digest: `sha256:${hex}`, size: body.length };
}

/** Stores a manifest (a blob) and points repository:tag at it; returns its digest. */
export function putManifest(dir: string, repository: string, tag: string, manifest: object): string {
  const { digest } = putBlob(dir, JSON.stringify(manifest));
  const file = join(dir, 'tags.json');
  const tags = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  tags[repository] = { ...tags[repository], [tag]: digest };
  writeFileSync(file, JSON.stringify(tags));
  return digest;
}

/**
 * Puts an image the host's engine has into the folder as repository:tag (a Docker image manifest,
 * schema 2, with the uncompressed layers `docker save` writes).
 */
export function putImage(dir: string, image: string, repository: string, tag: string): string {
  const work = join(dir, 'save');
  mkdirSync(work, { recursive: true });
  execFileSync('sh', ['-c', `docker save "$1" | tar -x -C "$2"`, 'sh', image, work]);
  const [saved] = JSON.parse(readFileSync(join(work, 'manifest.json'), 'utf8')) as Array<{
    Config: string;
    Layers: string[];
  }>;
  const config = putBlob(dir, readFileSync(join(work, saved!.Config)));
  const layers = saved!.Layers.map((l) => putBlob(dir, readFileSync(join(work, l))));
  rmSync(work, { recursive: true, force: true });
  return putManifest(dir, repository, tag, {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', ...config },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', ...l })),
  });
}

export interface StandInRegistry {
  server: Server;
  port: number;
  /** Every path asked for, in order. */
  paths: string[];
}

/**
 * Serves the folder. With `token`, every request without the stand-in's bearer token gets a 401
 * pointing at /token on the listening address (the anonymous flow).
 */
export async function standInRegistry(
  dir: string,
  options: {
    host?: string;
    port?: number;
    tls?: { cert: string; key: string };
    token?: boolean;
    log?: boolean;
  } = {},
): Promise<StandInRegistry> {
  const host = options.host ?? '127.0.0.1';
  const paths: string[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    paths.push(url);
    if (options.log) process.stdout.write(`${req.method} ${url}\n`);
    const port = (server.address() as AddressInfo).port;
    if (options.token) {
      if (url.startsWith('/token?')) {
        res.setHeader('Content-Type', 'application/json');
        return res.end(JSON.stringify({ token: 'stand-in-token' }));
      }
      if (req.headers.authorization !== 'Bearer stand-in-token') {
        const scope = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(url)?.[1];
        res.statusCode = 401;
        res.setHeader(
          'WWW-Authenticate',
          `Bearer realm="${options.tls ? 'https' : 'http'}://${host}:${port}/token",service="stand-in"${scope ? `,scope="repository:${scope}:pull"` : ''}`,
        );
        return res.end();
      }
    }
    res.setHeader('Docker-Distribution-Api-Version', 'registry/2.0');
    if (url === '/v2/' || url === '/v2') return res.end('{}');
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/?]+)$/.exec(url);
    const tags = existsSync(join(dir, 'tags.json'))
      ? JSON.parse(readFileSync(join(dir, 'tags.json'), 'utf8'))
      : {};
    const digest = m && (m[3]!.startsWith('sha256:') ? m[3]! : tags[m[1]!]?.[m[3]!]);
    const file = digest && join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
    if (!m || !file || !/^sha256:[0-9a-f]{64}$/.test(digest) || !existsSync(file)) {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'application/json');
      return res.end(
        JSON.stringify({ errors: [{ code: m?.[2] === 'blobs' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN' }] }),
      );
    }
    const body = readFileSync(file);
    res.setHeader('Docker-Content-Digest', digest);
    res.setHeader('Content-Length', statSync(file).size);
    res.setHeader(
      'Content-Type',
      m[2] === 'manifests'
        ? (JSON.parse(body.toString()).mediaType ?? 'application/json')
        : 'application/octet-stream',
    );
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const server = options.tls ? createHttpsServer(options.tls, handler) : createServer(handler);
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.port ? '0.0.0.0' : host, resolve),
  );
  return { server, port: (server.address() as AddressInfo).port, paths };
}

if (process.env.REGISTRY_DIR && process.env.REGISTRY_PORT)
  void standInRegistry(process.env.REGISTRY_DIR, {
    port: Number(process.env.REGISTRY_PORT),
    log: true,
    ...(process.env.REGISTRY_CERT && process.env.REGISTRY_KEY
      ? { tls: { cert: process.env.REGISTRY_CERT, key: process.env.REGISTRY_KEY } }
      : {}),
  });
