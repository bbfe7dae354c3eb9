/**
 * Publishes a sandbox's ports while its network has no way in or out: runs in a small companion
 * container that sits on the sandbox's internal network and on the outside one (where the engine
 * publishes the ports), and relays each TCP connection to the sandbox.
 *
 * Only the host's connections are relayed: the engine brings a published port's connections from
 * the host's loopback through the outside network's gateway, so a connection from any other address
 * there (another container on the same bridge) is closed at once.
 *
 *   SBX_FORWARD_TARGET  the sandbox's name on its network
 *   SBX_FORWARD_PORTS   container ports, comma-separated
 */
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

const target = process.env.SBX_FORWARD_TARGET ?? 'sandbox';
const ports = (process.env.SBX_FORWARD_PORTS ?? '').split(',').filter(Boolean).map(Number);

/** The gateway of the default route (/proc/net/route: little-endian hex), read at each connection. */
function gateway(): string | undefined {
  try {
    const route = readFileSync('/proc/net/route', 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .find((f) => f[1] === '00000000' && f[2] && f[2] !== '00000000');
    if (!route) return undefined;
    const n = Number.parseInt(route[2]!, 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
  } catch {
    return undefined;
  }
}

for (const port of ports) {
  createServer((client) => {
    const from = client.remoteAddress?.replace(/^::ffff:/, '');
    if (from !== gateway()) {
      process.stderr.write(`port ${port}: a connection from ${from} refused (only the host's are relayed)\n`);
      client.destroy();
      return;
    }
    const upstream = connect(port, target);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  }).listen(port, '0.0.0.0');
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
