/**
 * Publishes a sandbox's ports while its network has no way in or out: runs in a small companion
 * container that sits on the sandbox's internal network and on the outside one (where the engine
 * publishes the ports), and relays each TCP connection to the sandbox.
 *
 *   SBX_FORWARD_TARGET  the sandbox's name on its network
 *   SBX_FORWARD_PORTS   container ports, comma-separated
 */
import { connect, createServer } from 'node:net';

const target = process.env.SBX_FORWARD_TARGET ?? 'sandbox';
const ports = (process.env.SBX_FORWARD_PORTS ?? '').split(',').filter(Boolean).map(Number);

for (const port of ports) {
  createServer((client) => {
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
