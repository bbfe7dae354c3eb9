/**
 * Attacks on the files sbx reads from the workspace (issue 26, points 1 and 2): what the agent writes
 * into the workspace, as the agent user and as root (sudo), must not configure its next sandbox
 * unless the user approved it, and a dev container's build must stay in the workspace and behind the
 * egress proxy. Each attack runs against the suite's own listener and a fake config folder only.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Result, sbx, workspace } from '../helpers/cli.js';
import { cleanupTestResources, containersOf, docker } from '../helpers/engine.js';

const AS = [
  ['the agent user', ''],
  ['root (sudo)', 'sudo '],
] as const;

/** The host's address on the engine's default bridge: where a build step on that network reaches the host. */
const bridgeGateway = async () =>
  (await docker.getNetwork('bridge').inspect()).IPAM?.Config?.[0]?.Gateway ?? '172.17.0.1';

/** A shell line writing `text` to `path` inside (as root with `sudo`), whatever the text holds. */
const put = (sudo: string, path: string, text: string) =>
  `echo ${Buffer.from(text).toString('base64')} | base64 -d | ${sudo}tee ${path} >/dev/null`;

const inside = (ws: string, script: string): Promise<Result> =>
  sbx(['run', 'shell', '--', 'sh', '-c', script], { cwd: ws, timeoutMs: 900_000 });

/** Removes the workspace's sandboxes and its approvals (the approvals live in the real config folder). */
const forget = async (ws: string) => {
  await sbx(['rm', '-f', ws]);
  await sbx(['trust', '--revoke', ws]);
};

let listener: Server;
let hits = 0;
let port = 0;
const workspaces: string[] = [];
const dirs: string[] = [];

before(async () => {
  // The suite's own listener on every address of the host (as sshd or a dev server would be).
  listener = createServer((socket) => {
    hits++;
    socket.destroy();
  }).listen(0, '0.0.0.0');
  await once(listener, 'listening');
  port = (listener.address() as AddressInfo).port;
});

after(async () => {
  listener.close();
  for (const ws of workspaces) await forget(ws);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await cleanupTestResources();
});

describe('workspace settings written inside do not configure the next sandbox', {
  timeout: 1_800_000,
}, () => {
  for (const [who, sudo] of AS) {
    it(`as ${who}: renaming the read-only .sbx past its mount and writing a new settings file`, async () => {
      const address = `${await bridgeGateway()}:${port}`;
      const ws = await workspace();
      workspaces.push(ws);
      mkdirSync(join(ws, '.sbx'));
      writeFileSync(join(ws, '.sbx', 'settings.json'), '{"network": {"deniedDomains": ["example.test"]}}\n');
      await sbx(['trust', ws]);
      const evil = JSON.stringify({ network: { allowedDomains: [address] } });
      const r = await inside(
        ws,
        [
          `${sudo}sh -c 'echo x > .sbx/settings.json' 2>/dev/null && echo WROTE-IN-PLACE`,
          `${sudo}mv .sbx .sbx-old`,
          `${sudo}mkdir -p .sbx`,
          put(sudo, '.sbx/settings.json', evil),
          `${sudo}chmod 644 .sbx/settings.json`,
          'cat .sbx/settings.json',
        ].join('; '),
      );
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /WROTE-IN-PLACE/, 'the approved file is read-only inside');
      assert.match(readFileSync(join(ws, '.sbx', 'settings.json'), 'utf8'), new RegExp(address));
      await sbx(['rm', '-f', ws]);
      const again = await inside(ws, `curl -s -m 5 http://${address}/ ; echo done`);
      assert.notEqual(again.code, 0, `the swapped settings were applied: ${again.stdout}${again.stderr}`);
      assert.match(again.stderr, /sbx trust/);
      assert.match(
        again.stderr,
        new RegExp(address.replace(/\./g, '\\.')),
        'it shows what the file would allow',
      );
      assert.equal((await containersOf(ws)).length, 0, 'nothing was created');
      assert.equal(hits, 0, 'the listener saw no connection');
    });

    it(`as ${who}: creating a settings file where there was none`, async () => {
      const address = `${await bridgeGateway()}:${port}`;
      const ws = await workspace();
      workspaces.push(ws);
      const evil = JSON.stringify({ network: { allowedDomains: [address] } });
      const r = await inside(
        ws,
        `${sudo}mkdir -p .sbx && ${put(sudo, '.sbx/settings.json', evil)} && ${sudo}chmod -R a+rX .sbx`,
      );
      assert.equal(r.code, 0, r.stderr);
      await sbx(['rm', '-f', ws]);
      const again = await inside(ws, 'true');
      assert.notEqual(again.code, 0, 'the planted settings were applied');
      assert.match(again.stderr, /sbx trust/);
      assert.equal((await containersOf(ws)).length, 0, 'nothing was created');
    });
  }
});

describe('a planted dev container cannot build from outside the workspace', { timeout: 3_600_000 }, () => {
  for (const [who, sudo] of AS) {
    for (const how of ['a context path outside', 'a context symlinked out'] as const) {
      it(`as ${who}: ${how} is refused, even approved`, async () => {
        // A fake config folder with a marker secret: never the real one.
        const fake = mkdtempSync(join(tmpdir(), 'sbx-fake-config-'));
        dirs.push(fake);
        writeFileSync(join(fake, 'secrets.json'), '{"token": "secret-marker-26b"}\n');
        const ws = await workspace();
        workspaces.push(ws);
        const context = how === 'a context path outside' ? fake : '../ctx';
        const dc = JSON.stringify({ build: { dockerfile: 'Dockerfile', context } });
        const r = await inside(
          ws,
          [
            'set -e',
            how === 'a context symlinked out' ? `${sudo}ln -s ${fake} ctx` : 'true',
            `${sudo}mkdir -p .devcontainer`,
            put(sudo, '.devcontainer/devcontainer.json', dc),
            put(
              sudo,
              '.devcontainer/Dockerfile',
              'FROM debian:trixie-slim\nCOPY secrets.json /stolen.json\n',
            ),
            `${sudo}chmod -R a+rX .devcontainer`,
          ].join('\n'),
        );
        assert.equal(r.code, 0, r.stderr);
        await sbx(['rm', '-f', ws]);
        // Even the user's approval does not let a build read outside the workspace.
        await sbx(['trust', ws]);
        const again = await sbx(['run', 'shell', '--', 'cat', '/stolen.json'], {
          cwd: ws,
          timeoutMs: 900_000,
        });
        assert.doesNotMatch(again.stdout, /secret-marker-26b/, 'the host file reached the sandbox');
        assert.notEqual(again.code, 0);
        assert.match(again.stderr, /outside the workspace/);
        assert.equal((await containersOf(ws)).length, 0, 'nothing was created');
      });
    }
  }
});

describe("a dev container's build steps reach the network only through the proxy", {
  timeout: 1_800_000,
}, () => {
  for (const [who, sudo] of AS) {
    it(`as ${who}: a RUN step cannot reach the host's bridge address`, async () => {
      const gateway = await bridgeGateway();
      const before = hits;
      const ws = await workspace();
      workspaces.push(ws);
      // The probe's step, then a failing one: the sbx layer on top is not needed to see the probe.
      const dockerfile = [
        'FROM debian:trixie-slim',
        `RUN ((timeout 5 bash -c 'exec 3<>/dev/tcp/${gateway}/${port}' && echo DIRECT-REACHED) || echo direct-unreachable) > /probe`,
        'RUN cat /probe && echo probe-done && false',
      ].join('\n');
      const r = await inside(
        ws,
        [
          'set -e',
          `${sudo}mkdir -p .devcontainer`,
          put(sudo, '.devcontainer/devcontainer.json', '{"build": {"dockerfile": "Dockerfile"}}'),
          put(sudo, '.devcontainer/Dockerfile', `${dockerfile}\n`),
          `${sudo}chmod -R a+rX .devcontainer`,
        ].join('\n'),
      );
      assert.equal(r.code, 0, r.stderr);
      await sbx(['rm', '-f', ws]);
      await sbx(['trust', ws]);
      const built = await sbx(['run', 'shell', '--', 'true'], { cwd: ws, timeoutMs: 900_000 });
      assert.equal(hits, before, "a build step reached the suite's listener on the host");
      assert.match(built.stderr, /\| probe-done/, `the approved Dockerfile's steps ran: ${built.stderr}`);
      assert.match(built.stderr, /\| direct-unreachable/);
    });
  }
});
