import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { currentEndpoint } from './connection.js';

/**
 * The engine's HTTP API spoken directly, for the calls on every reattach (find, list, start, exec)
 * and on a plain creation (engine info, networks, create, archives): node's http module only, so
 * those paths start without loading dockerode. Errors carry the
 * engine's statusCode and message, like dockerode's.
 */
async function send(method: string, path: string, body: unknown, upgrade: boolean) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const req = await open(method, path, {
    ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}),
    ...(upgrade ? { Connection: 'Upgrade', Upgrade: 'tcp' } : {}),
  });
  return req.end(payload);
}

async function open(method: string, path: string, headers: Record<string, string | number>) {
  const { options } = currentEndpoint();
  const { request } = await import(options.protocol === 'https' ? 'node:https' : 'node:http');
  return request({
    ...(options.socketPath ? { socketPath: options.socketPath } : { host: options.host, port: options.port }),
    ...(options.agent ? { agent: options.agent } : {}),
    method,
    path,
    headers,
  });
}

function failure(res: IncomingMessage, text: string): Error {
  let message = text.trim();
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? message;
  } catch {}
  return Object.assign(new Error(`(HTTP code ${res.statusCode}) ${message}`), {
    statusCode: res.statusCode,
    json: message,
  });
}

/** One request; the decoded JSON answer (undefined for an empty or non-JSON one). Status 400 and up throw. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  return answerOf<T>(await send(method, path, body, false));
}

/** A request whose body is a stream (a tar archive for PUT …/archive); answered like api(). */
export async function upload<T>(method: string, path: string, body: Readable, type: string): Promise<T> {
  const req = await open(method, path, { 'Content-Type': type, 'Transfer-Encoding': 'chunked' });
  const answer = answerOf<T>(req);
  body.on('error', (err) => req.destroy(err));
  body.pipe(req);
  return answer;
}

function answerOf<T>(req: ClientRequest): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if ((res.statusCode ?? 500) >= 400) return reject(failure(res, text));
        // Only JSON is an answer: Podman says "OK" (text/plain) where Docker says nothing.
        if (!text || !/json/.test(res.headers['content-type'] ?? '')) return resolve(undefined as T);
        try {
          resolve(JSON.parse(text) as T);
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
  });
}

/** A request the engine answers by handing over the connection (exec start): the raw stream. */
export async function hijack(path: string, body: unknown): Promise<Socket> {
  const req = await send('POST', path, body, true);
  return new Promise<Socket>((resolve, reject) => {
    req.on('error', reject);
    req.on('upgrade', (_res: IncomingMessage, socket: Socket, head: Buffer) => {
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.on('response', (res: IncomingMessage) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString();
      });
      res.on('end', () => reject(failure(res, text)));
    });
  });
}

/** Query strings as the engine expects them (filters as JSON). */
export const query = (params: Record<string, string | number | boolean | object>) =>
  Object.entries(params)
    .map(([k, v]) => `${k}=${encodeURIComponent(typeof v === 'object' ? JSON.stringify(v) : String(v))}`)
    .join('&');
