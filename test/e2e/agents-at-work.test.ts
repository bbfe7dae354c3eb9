/**
 * Every agent at work: pointed at the suite's own stand-in API (test/helpers/stand-in-api.ts, in a
 * test container) through its documented endpoint setting, each agent runs one turn of its loop in
 * its sandbox: the stand-in asks for a shell tool call that writes proof.txt, the agent runs it with
 * no prompt (sbx's bypass flag), sends the result back, and prints the stand-in's final answer. All
 * of it through sbx's egress proxy, in deny mode, with the stand-in allowed by address like a
 * company endpoint and the agent's vendor hosts refused, so no request leaves for the internet.
 * Without the bypass (the agent called directly in the sandbox) the same call does not run.
 */
import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AGENTS } from '../../src/agents/registry.js';
import {
  BIN,
  PROXY,
  type Result,
  ROOT,
  RUN_ID,
  STATE_PREFIX,
  sbx,
  TEST_LABEL,
  TEST_USER,
  workspace,
} from '../helpers/cli.js';
import { cleanupTestResources, docker, FITTING_LIMITS } from '../helpers/engine.js';
import { FINAL, PROOF_FILE, type Recorded } from '../helpers/stand-in-api.js';
import { NO_TMUX, terminal } from '../helpers/terminal.js';

const term = terminal(`sbx-test-${process.pid}-agents`);

after(async () => {
  term.kill();
  await cleanupTestResources();
});

const PORT = 8080;
const PROMPT = 'Write the proof file.';
const SEEN = `${FINAL}: tool output seen.`;
const standIn = { ip: '', base: '' };
/** The egress proxy's address on the default bridge, where the stand-in sees requests come from. */
const proxyAddress = async () =>
  (await docker.getContainer(PROXY).inspect()).NetworkSettings.Networks.bridge?.IPAddress;

/** Everything the stand-in has been asked so far. */
async function requests(): Promise<Recorded[]> {
  const r = await fetch(`${standIn.base}/_standin/requests`);
  return (await r.json()) as Recorded[];
}

/** What the stand-in is asked while `run` runs. */
async function asked<T>(run: () => Promise<T>): Promise<{ result: T; asked: Recorded[] }> {
  const before = (await requests()).length;
  const result = await run();
  return { result, asked: (await requests()).slice(before) };
}

/**
 * Deny mode, the stand-in allowed by address (a private one: only an explicit allow lets it
 * through), and the agent's own hosts refused but the npm registry (OpenCode installs its provider).
 */
const policy = (agent: string): string[] => [
  '--network-policy',
  'deny',
  '--allow-host',
  standIn.ip,
  ...AGENTS.find((a) => a.name === agent)!.allowedHosts.flatMap((h) =>
    h === 'registry.npmjs.org' ? [] : ['--block-host', h],
  ),
];

const envFlags = (env: string[]) => env.flatMap((e) => ['-e', e]);

/**
 * On a host behind a company proxy (HTTPS_PROXY), sbx's proxy chains allowed traffic to it: the
 * stand-in, a local container, is reached directly, as NO_PROXY says.
 */
const noProxy = () => {
  const list = [process.env.NO_PROXY ?? process.env.no_proxy, standIn.ip].filter(Boolean).join(',');
  return { NO_PROXY: list, no_proxy: list };
};

interface Case {
  agent: string;
  /** Points the agent at the stand-in (variables for -e). */
  env: () => string[];
  /** Files the agent reads its endpoint from, written into the workspace. */
  files?: () => Record<string, string>;
  /** The agent's non-interactive arguments (after sbx's launch command and bypass flag). */
  args: () => string[];
  /**
   * The same without the bypass: a command for `sbx exec` (with env, plus `env` here), and what shows
   * that the call was refused.
   */
  negative: {
    env?: string[];
    command: () => string[];
    refused: (asked: Recorded[], output: string) => void;
  };
}

const toolResults = (asked: Recorded[]) => asked.flatMap((r) => (r.toolResult ? [r.toolResult] : []));

/** Codex CLI: a custom provider on the Responses API (its only wire API), given as -c overrides. */
const codexProvider = () => [
  '-c',
  'model_provider="standin"',
  '-c',
  'model_providers.standin.name="standin"',
  '-c',
  `model_providers.standin.base_url="${standIn.base}/v1"`,
  '-c',
  'model_providers.standin.env_key="STANDIN_API_KEY"',
  '-c',
  'model_providers.standin.wire_api="responses"',
  '-m',
  'stand-in',
];

const CASES: Case[] = [
  {
    // Claude Code: ANTHROPIC_BASE_URL, the Messages API streamed, its Bash tool.
    agent: 'claude',
    env: () => [
      `ANTHROPIC_BASE_URL=${standIn.base}`,
      'ANTHROPIC_API_KEY=sk-ant-standin',
      'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1',
    ],
    args: () => ['-p', PROMPT],
    negative: {
      command: () => ['claude', '-p', PROMPT],
      refused: (asked) => assert.match(toolResults(asked).join('\n'), /\[error\].*needs approval/s),
    },
  },
  {
    // Codex CLI: a model provider with base_url (config.toml's model_providers), the Responses API
    // streamed, its exec_command tool.
    agent: 'codex',
    env: () => ['STANDIN_API_KEY=sk-standin'],
    args: () => ['exec', ...codexProvider(), PROMPT],
    negative: {
      // Codex's own sandbox (read-only workspace, or here: bubblewrap without user namespaces) stops it.
      command: () => ['codex', 'exec', ...codexProvider(), PROMPT],
      refused: (asked) => assert.match(toolResults(asked).join('\n'), /Process exited with code [1-9]/),
    },
  },
  {
    // Gemini CLI: GOOGLE_GEMINI_BASE_URL with an API key, the Gemini API streamed (SSE), its
    // run_shell_command tool. With the variable alone it picks the "gateway" auth type, which its
    // own check rejects ("Invalid auth method selected."): the settings name the API-key type.
    agent: 'gemini',
    env: () => ['GEMINI_API_KEY=standin-key', `GOOGLE_GEMINI_BASE_URL=${standIn.base}`],
    files: () => ({
      '.gemini/settings.json': JSON.stringify({ security: { auth: { selectedType: 'gemini-api-key' } } }),
    }),
    args: () => ['-p', PROMPT],
    negative: {
      command: () => ['gemini', '-p', PROMPT],
      // Without --yolo, non-interactive Gemini CLI does not even offer its shell tool to the model.
      refused: (asked) => {
        const turns = asked.filter((r) => r.url.includes(':streamGenerateContent'));
        assert.ok(turns.length > 0, 'the agent asked the stand-in');
        for (const turn of turns) {
          const offered = (turn.body.tools ?? []).flatMap(
            (t: { functionDeclarations?: Array<{ name: string }> }) =>
              (t.functionDeclarations ?? []).map((d) => d.name),
          );
          assert.ok(offered.length > 0 && !offered.includes('run_shell_command'), offered.join(', '));
        }
      },
    },
  },
  {
    // OpenCode: a custom provider through @ai-sdk/openai-compatible (installed by OpenCode from the
    // npm registry), Chat Completions streamed, its bash tool. Its own default (1.18) already lets
    // bash run; sbx's setting (permission: allow) also covers what it asks by default (folders
    // outside the workspace): the negative turns it to "ask".
    agent: 'opencode',
    env: () => [],
    files: () => ({
      'opencode.json': JSON.stringify({
        $schema: 'https://opencode.ai/config.json',
        provider: {
          standin: {
            npm: '@ai-sdk/openai-compatible',
            name: 'Stand-in',
            options: { baseURL: `${standIn.base}/v1`, apiKey: 'standin-key' },
            models: { 'stand-in': { name: 'Stand-in', tool_call: true } },
          },
        },
        model: 'standin/stand-in',
      }),
    }),
    args: () => ['run', PROMPT],
    negative: {
      env: ['OPENCODE_CONFIG_CONTENT={"permission":"ask"}'],
      command: () => ['opencode', 'run', PROMPT],
      refused: (_asked, output) => assert.match(output, /permission requested: bash.*auto-rejecting/),
    },
  },
  {
    // Copilot CLI: its BYOK provider (COPILOT_PROVIDER_BASE_URL, OpenAI Chat Completions), offline
    // (no GitHub login, no telemetry), its bash tool.
    agent: 'copilot',
    env: () => [
      `COPILOT_PROVIDER_BASE_URL=${standIn.base}/v1`,
      'COPILOT_PROVIDER_API_KEY=standin-key',
      'COPILOT_MODEL=stand-in',
      'COPILOT_OFFLINE=true',
      'COPILOT_AUTO_UPDATE=false',
    ],
    args: () => ['-p', PROMPT],
    negative: {
      command: () => ['copilot', '-p', PROMPT],
      refused: (asked) => assert.match(toolResults(asked).join('\n'), /Permission denied/),
    },
  },
];

/** A fresh workspace with the agent's endpoint files, owned by `owner` (root when undefined). */
async function workspaceFor(c: Case, owner?: typeof TEST_USER): Promise<string> {
  const ws = await workspace(owner ? { owner } : {});
  for (const [path, text] of Object.entries(c.files?.() ?? {})) {
    const file = join(ws, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    if (owner) {
      chownSync(dirname(file), owner.uid, owner.gid);
      chownSync(file, owner.uid, owner.gid);
    }
  }
  return ws;
}

/** Runs the agent as sbx launches it and checks the whole loop. */
async function atWork(c: Case, owner?: typeof TEST_USER): Promise<string> {
  const ws = await workspaceFor(c, owner);
  const uid = owner?.uid ?? 0;
  const { result: r, asked: seen } = await asked(() =>
    sbx(['run', c.agent, ...policy(c.agent), ...envFlags(c.env()), '--', ...c.args()], {
      cwd: ws,
      env: noProxy(),
      timeoutMs: 180_000,
      ...(owner ? { asUser: owner } : {}),
    }),
  );
  const why = `${c.agent} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  // The tool call ran, with no prompt (stdin is not even open), as the workspace's owner.
  const proof = join(ws, PROOF_FILE);
  assert.ok(existsSync(proof), `no ${PROOF_FILE}: ${why}`);
  assert.equal(readFileSync(proof, 'utf8'), 'sbx-at-work\n');
  assert.equal(statSync(proof).uid, uid, 'the file belongs to the workspace owner');
  // Its result went back to the stand-in, and the agent printed the answer to it and exited 0.
  assert.ok(
    seen.some((q) => q.answer === 'tool'),
    `the stand-in asked for the tool: ${JSON.stringify(seen.map((q) => q.url))}`,
  );
  assert.match(toolResults(seen).join('\n'), new RegExp(`TOOL-RAN\\s+${uid}\\b`), why);
  assert.ok(r.stdout.includes(SEEN), why);
  assert.equal(r.code, 0, why);
  // Every request to the stand-in came from sbx's proxy, which logged it as allowed by the explicit rule.
  const proxy = await proxyAddress();
  assert.ok(proxy, 'the proxy is on the default bridge');
  assert.deepEqual([...new Set(seen.map((q) => q.from))], [proxy]);
  const log = JSON.parse(
    (await sbx(['network', 'log', '--json'], { cwd: ws, ...(owner ? { asUser: owner } : {}) })).stdout,
  ) as Array<{ host: string; port: number; allowed: boolean; rule: string }>;
  const toStandIn = log.filter((d) => d.host === standIn.ip && d.port === PORT);
  assert.ok(toStandIn.length > 0, `not in the network log: ${JSON.stringify(log)}`);
  // The stand-in is on a private address, which only the rule naming it opens, and the log says so.
  assert.ok(
    toStandIn.every(
      (d) =>
        d.allowed && d.rule === `allow ${standIn.ip} (allowed by name, which opens ${standIn.ip} (private))`,
    ),
    JSON.stringify(toStandIn.slice(0, 2)),
  );
  return ws;
}

describe('agents at work: a real tool call, no prompt, through the egress proxy', {
  timeout: 1_500_000,
}, () => {
  before(async () => {
    // The stand-in, on the default bridge like any outside host: reachable only through the proxy.
    const source = readFileSync(join(ROOT, 'dist', 'test', 'helpers', 'stand-in-api.js'), 'utf8');
    const image = (await docker.getImage('sbx/base:latest').inspect()).Id;
    const container = await docker.createContainer({
      Image: image,
      Entrypoint: ['node', '--input-type=module', '-e', source],
      Env: [`STANDIN_PORT=${PORT}`],
      Labels: { [TEST_LABEL]: RUN_ID },
      HostConfig: FITTING_LIMITS,
    });
    await container.start();
    standIn.ip = (await container.inspect()).NetworkSettings.IPAddress;
    standIn.base = `http://${standIn.ip}:${PORT}`;
    for (const deadline = Date.now() + 15_000; ; ) {
      if (
        await requests().then(
          () => true,
          () => false,
        )
      )
        break;
      if (Date.now() > deadline) assert.fail('the stand-in did not come up');
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  for (const c of CASES) {
    describe(c.agent, () => {
      let rootWorkspace = '';

      it(`sbx run ${c.agent}: the tool runs without a prompt in a workspace of a non-root user`, async () => {
        await atWork(c, TEST_USER);
      });

      it(`sbx run ${c.agent}: the same in a workspace owned by root`, async () => {
        rootWorkspace = await atWork(c);
      });

      it(`${c.agent} without its bypass setting does not run the same tool call`, async (t) => {
        if (!rootWorkspace) return t.skip('needs the sandbox of the previous test, which failed');
        const proof = join(rootWorkspace, PROOF_FILE);
        writeFileSync(proof, 'before\n');
        const { result: r, asked: seen } = await asked(
          (): Promise<Result> =>
            sbx(
              [
                'exec',
                ...envFlags([...c.env(), ...(c.negative.env ?? [])]),
                '.',
                '--',
                ...c.negative.command(),
              ],
              {
                cwd: rootWorkspace,
                timeoutMs: 180_000,
              },
            ),
        );
        const output = `${r.stdout}\n${r.stderr}`;
        assert.ok(seen.length > 0, `the agent did not reach the stand-in: ${output}`);
        assert.equal(readFileSync(proof, 'utf8'), 'before\n', `the tool ran: ${output}`);
        assert.doesNotMatch(toolResults(seen).join('\n'), /TOOL-RAN/, output);
        c.negative.refused(seen, output);
      });
    });
  }

  describe('Claude Code on a terminal', {
    skip: NO_TMUX,
  }, () => {
    const screen = () => term.screen(true);
    const waitFor = (pattern: RegExp, timeoutMs = 90_000) => term.waitFor(pattern, timeoutMs, true);
    const { line } = term;

    it('shows the tool running and the final answer, with no approval dialog', async () => {
      const ws = await workspace();
      term.open(ws, 120, 40);
      const env = `SBX_LABELS=${TEST_LABEL}=${RUN_ID} SBX_STATE_PREFIX=${STATE_PREFIX} SBX_PROXY_NAME=${PROXY} NO_PROXY=${noProxy().NO_PROXY}`;
      // A bearer token, not an API key: an interactive Claude Code asks once whether to use an API key
      // found in its environment (a login question, not a tool approval).
      const flags = [
        ...policy('claude'),
        ...envFlags([
          `ANTHROPIC_BASE_URL=${standIn.base}`,
          'ANTHROPIC_AUTH_TOKEN=sk-ant-standin',
          'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1',
        ]),
      ].map((f) => `'${f}'`);
      line(`export PS1='host$ ' ${env}; node ${BIN} run claude ${flags.join(' ')}`);
      await waitFor(/bypass permissions on/);
      const { asked: seen } = await asked(async () => {
        line(PROMPT);
        await waitFor(/STANDIN-FINAL-ANSWER/);
      });
      const text = screen();
      assert.match(text, /Bash\(echo sbx-at-work > proof\.txt/);
      assert.match(text, /TOOL-RAN\s+0/);
      assert.match(text, new RegExp(SEEN.replaceAll('.', '\\.')));
      assert.doesNotMatch(text, /Do you want to proceed|don't ask again|needs approval|Allow once/i);
      assert.equal(readFileSync(join(ws, PROOF_FILE), 'utf8'), 'sbx-at-work\n');
      assert.match(toolResults(seen).join('\n'), /TOOL-RAN\s+0\b/);
      // Ctrl-C twice quits Claude Code; sbx exits with its code.
      term.key('C-c');
      await new Promise((r) => setTimeout(r, 300));
      term.key('C-c');
      await waitFor(/^host\$\s*$/m, 30_000);
      line('echo SBX_EXIT=$?');
      await waitFor(/SBX_EXIT=0/, 10_000);
    });
  });
});
