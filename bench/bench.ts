/**
 * `npm run bench`: sbx against raw Docker (and the Dev Containers CLI) on this machine, side by side,
 * as ratios that hold on a noisy machine. Prints a markdown table and writes every figure as JSON.
 *
 *   node dist/bench/bench.js [--runs N] [--sandboxes N] [--scale N] [--out FILE] [--quick] [--no-peer]
 *                            [--only SECTION,...]   (or SBX_BENCH=SECTION,...)
 *
 * Sections: startup, ls, reattach, cold, template, scale, footprint, proxy, injection, first-screen, gvisor,
 * docker, peer (all by default).
 *
 * Everything it creates carries the label dev.sbx.bench=<run> and is removed at the end; it has an
 * egress proxy of its own (SBX_PROXY_NAME).
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SBX = join(ROOT, 'bin', 'run.js');
const RUN = `b${process.pid}`;
const LABEL = `dev.sbx.bench=${RUN}`;

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(argv[i + 1]);
};
const quick = argv.includes('--quick');
const RUNS = option('runs', quick ? 1 : 10);
const WARMUP = quick ? 0 : 2;
const SANDBOXES = option('sandboxes', quick ? 2 : 50);
const SCALE = option('scale', quick ? 2 : 20);
/** The sections asked for (--only or SBX_BENCH), or every one. */
const ONLY = (() => {
  const i = argv.indexOf('--only');
  const list = i === -1 ? process.env.SBX_BENCH : argv[i + 1];
  return list ? new Set(list.split(',').map((x) => x.trim())) : undefined;
})();
const want = (...sections: string[]) => !ONLY || sections.some((x) => ONLY.has(x));
const PEER = !quick && !argv.includes('--no-peer') && want('peer');
const OUT = (() => {
  const i = argv.indexOf('--out');
  return i === -1 ? join(ROOT, 'bench-results.json') : resolve(argv[i + 1]!);
})();

/** The bench's own egress proxy and state volumes: a user's sandboxes and logins are never touched. */
const PROXY = `sbx-proxy-${RUN}`;
const env = {
  ...process.env,
  SBX_LABELS: LABEL,
  SBX_STATE_PREFIX: `sbx-bench-${RUN}-`,
  SBX_PROXY_NAME: PROXY,
};

interface Timing {
  median: number;
  min: number;
  runs: number[];
}

function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): { ms: number; code: number; out: string } {
  const start = performance.now();
  const r = spawnSync(cmd, args, {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? env,
    ...(options.input !== undefined ? { input: options.input } : {}),
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  const ms = performance.now() - start;
  return { ms, code: r.status ?? 1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function must(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): string {
  const r = run(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}):\n${r.out}`);
  return r.out;
}

/** Warm-ups, then RUNS timed runs; before() runs untimed before each (e.g. a fresh workspace). */
function measure(cmd: string, args: string[] | (() => string[]), before?: () => { cwd?: string }): Timing {
  const times: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const options = before?.() ?? {};
    const r = run(cmd, typeof args === 'function' ? args() : args, options);
    if (r.code !== 0) throw new Error(`${cmd} failed (${r.code}):\n${r.out}`);
    if (i >= WARMUP) times.push(r.ms);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return {
    median: sorted[Math.floor(sorted.length / 2)]!,
    min: sorted[0]!,
    runs: times.map((t) => Math.round(t)),
  };
}

const sbx = (...args: string[]): [string, string[]] => [process.execPath, [SBX, ...args]];

function workspace(): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sbx-bench-')));
  must('git', ['init', '-q', dir]);
  must('git', ['-C', dir, 'config', 'user.name', 'Bench']);
  must('git', ['-C', dir, 'config', 'user.email', 'bench@example.test']);
  return dir;
}

function cleanup(): void {
  const ids = must('docker', ['ps', '-aq', '--filter', `label=${LABEL}`])
    .split('\n')
    .filter(Boolean);
  if (ids.length) run('docker', ['rm', '-f', ...ids]);
  const nets = must('docker', ['network', 'ls', '-q', '--filter', `label=${LABEL}`])
    .split('\n')
    .filter(Boolean);
  for (const net of nets) {
    run('docker', ['network', 'disconnect', '-f', net, PROXY]);
    run('docker', ['network', 'rm', net]);
  }
  const vols = must('docker', ['volume', 'ls', '-q', '--filter', `label=${LABEL}`])
    .split('\n')
    .filter(Boolean);
  if (vols.length) run('docker', ['volume', 'rm', ...vols]);
}

async function concurrently(
  count: number,
  cwdOf: (i: number) => string,
  [cmd, args]: [string, string[]] = [process.execPath, [SBX, 'run', 'shell', '--', 'true']],
): Promise<{ ms: number; failures: number }> {
  const start = performance.now();
  const codes = await Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        new Promise<number>((done) => {
          const child = spawn(cmd, args, {
            cwd: cwdOf(i),
            env,
            stdio: 'ignore',
          });
          child.on('close', (code) => done(code ?? 1));
        }),
    ),
  );
  return { ms: performance.now() - start, failures: codes.filter((c) => c !== 0).length };
}

/** Peak resident memory of a process, polled from /proc while it runs (Linux). */
function peakRss(cmd: string, args: string[], cwd: string): Promise<number> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd, env, stdio: 'ignore' });
    let peak = 0;
    const poll = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024);
      } catch {}
    }, 5);
    child.on('close', () => {
      clearInterval(poll);
      done(peak);
    });
  });
}

const memoryOf = (container: string) => {
  const usage = must('docker', ['stats', '--no-stream', '--format', '{{.MemUsage}}', container])
    .trim()
    .split(' / ')[0]!;
  const m = /([\d.]+)\s*([KMG]i?B|B)/.exec(usage);
  const unit: Record<string, number> = {
    B: 1,
    KiB: 2 ** 10,
    MiB: 2 ** 20,
    GiB: 2 ** 30,
    kB: 1e3,
    MB: 1e6,
    GB: 1e9,
  };
  return m ? Number(m[1]) * (unit[m[2]!] ?? 1) : Number.NaN;
};

/**
 * 11. An injecting host against a tunnelled one: the same HTTPS server (node, in a container of the
 * bench's own, with a certificate from a bench CA sbx is told to trust) under two names, one with a
 * secret bound (the proxy terminates TLS and injects), one without (a plain CONNECT tunnel); curl in
 * one sandbox. A secret store and CA of the bench's own (SBX_CONFIG_DIR): the user's are untouched.
 */
async function injection(): Promise<Record<string, number | string>> {
  const { issueLeaf, makeCa } = await import('../src/config/egress-ca.js');
  const hosts = { injected: 'inj.bench.test', tunnelled: 'tun.bench.test' };
  const port = 8443;
  const config = mkdtempSync(join(tmpdir(), 'sbx-bench-config-'));
  const trusted = mkdtempSync(join(tmpdir(), 'sbx-bench-ca-'));
  const own = { ...env, SBX_CONFIG_DIR: config, SBX_CA_CERTS: trusted };
  const ca = await makeCa('sbx bench upstream CA');
  writeFileSync(join(trusted, 'bench-ca.crt'), ca.cert);
  const leaf = await issueLeaf(ca, Object.values(hosts));
  const network = `sbx-bench-${RUN}-upstream`;
  must('docker', ['network', 'create', '--label', LABEL, network]);
  const server = `const big=Buffer.alloc(1<<20);require('https').createServer({cert:process.env.C,key:process.env.K},(q,s)=>{q.resume();q.on('end',()=>{if(q.url==='/big'){s.setHeader('content-length',64<<20);let n=64;const more=()=>{while(n>0){n--;if(!s.write(big))return s.once('drain',more)}s.end()};return more()}s.end('ok')})}).listen(${port})`;
  must('docker', [
    'run',
    '-d',
    '--label',
    LABEL,
    '--network',
    network,
    ...Object.values(hosts).flatMap((h) => ['--network-alias', h]),
    '-e',
    `C=${leaf.cert}`,
    '-e',
    `K=${leaf.key}`,
    '--entrypoint',
    'node',
    'sbx/base:latest',
    '-e',
    server,
  ]);
  must(process.execPath, [SBX, 'secret', 'set', 'BENCH_TOKEN', '--host', hosts.injected], {
    env: own,
    input: 'bench-value',
  });
  const ws = workspace();
  must(
    process.execPath,
    [
      SBX,
      'create',
      'shell',
      ws,
      '--template',
      'sbx/base:latest',
      ...Object.values(hosts).flatMap((h) => ['--allow-host', h]),
    ],
    { env: own },
  );
  must('docker', ['network', 'connect', network, PROXY]);
  const inside = (script: string) =>
    must(process.execPath, [SBX, 'exec', ws, '--', 'sh', '-c', script], { env: own });
  // Wait for the server (through the proxy, so its name resolves there too).
  inside(
    `for i in $(seq 100); do curl -sk -o /dev/null https://${hosts.tunnelled}:${port}/ && exit 0; sleep 0.1; done; exit 1`,
  );
  const n = quick ? 10 : 60;
  const times = (host: string) =>
    inside(
      `for i in $(seq ${n}); do curl -sk -o /dev/null -w '%{time_total} %{http_code}\\n' -H "Authorization: Bearer $BENCH_TOKEN" https://${host}:${port}/small; done`,
    )
      .trim()
      .split('\n')
      .map((l) => {
        const [t, code] = l.split(' ');
        if (code !== '200') throw new Error(`a request to ${host} answered ${code}`);
        return Number(t) * 1000;
      });
  const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  // Interleaved rounds, so that a neighbour's load falls on both alike.
  const lat = { injected: [] as number[], tunnelled: [] as number[] };
  for (let round = 0; round < 3; round++) {
    lat.tunnelled.push(...times(hosts.tunnelled));
    lat.injected.push(...times(hosts.injected));
  }
  const speed = (host: string) =>
    inside(
      `curl -sk -o /dev/null -w '%{speed_download}' -H "Authorization: Bearer $BENCH_TOKEN" https://${host}:${port}/big`,
    );
  const bps = { injected: [] as number[], tunnelled: [] as number[] };
  for (let i = 0; i < (quick ? 1 : 5); i++) {
    bps.tunnelled.push(Number(speed(hosts.tunnelled)));
    bps.injected.push(Number(speed(hosts.injected)));
  }
  const log = must(process.execPath, [SBX, 'network', 'log', ws, '--json'], { env: own });
  const injectedRequests = (JSON.parse(log) as Array<{ host: string; injected?: string[] }>).filter(
    (l) => l.host === hosts.injected && l.injected?.includes('BENCH_TOKEN'),
  ).length;
  for (const dir of [config, trusted]) rmSync(dir, { recursive: true, force: true });
  const added = mid(lat.injected) - mid(lat.tunnelled);
  const ratio = mid(bps.injected) / mid(bps.tunnelled);
  return {
    requests: lat.injected.length,
    injectedRequests,
    injectedMedianMs: Number(mid(lat.injected).toFixed(2)),
    tunnelledMedianMs: Number(mid(lat.tunnelled).toFixed(2)),
    addedLatencyMs: Number(added.toFixed(2)),
    latencyBudgetMs: 5,
    injectedMiBps: Number((mid(bps.injected) / 2 ** 20).toFixed(1)),
    tunnelledMiBps: Number((mid(bps.tunnelled) / 2 ** 20).toFixed(1)),
    throughputRatio: Number(ratio.toFixed(2)),
    throughputBudget: 0.8,
    body: '64 MiB',
  };
}

/** Escape sequences of a terminal's output: operating-system commands, and control sequences. */
const OSC = new RegExp(
  `${String.fromCharCode(27)}\\][^${String.fromCharCode(7)}]*${String.fromCharCode(7)}`,
  'g',
);
const CSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?>=]*[A-Za-z]`, 'g');
/**
 * The time until an agent's first screen is drawn, through a pseudo-terminal (util-linux `script`,
 * 100x30): from spawning the command until the screen's marker has been written to the terminal,
 * read from the terminal's output as it comes (escape sequences taken as spaces: Ink positions words
 * with cursor moves). Then Ctrl-C twice, which ends Claude Code, and the process is waited for.
 */
function firstScreen(command: string[], marker: RegExp, cwd: string): Promise<number> {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  return new Promise((done, fail) => {
    const start = performance.now();
    const child = spawn(
      'script',
      ['-q', '-e', '-c', `stty cols 100 rows 30; exec ${command.map(quote).join(' ')}`, '/dev/null'],
      { cwd, env: { ...env, TERM: 'xterm-256color' }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let screen = '';
    let drawn: number | undefined;
    const deadline = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      if (drawn !== undefined) return;
      screen += chunk.toString();
      const plain = screen.replace(OSC, '').replace(CSI, ' ');
      if (!marker.test(plain)) return;
      drawn = performance.now() - start;
      child.stdin.write('\x03');
      setTimeout(() => child.stdin.write('\x03'), 300);
    });
    child.stderr.resume();
    child.on('close', () => {
      clearTimeout(deadline);
      if (drawn === undefined) fail(new Error(`no first screen from ${command.join(' ')}:\n${screen}`));
      else done(drawn);
    });
  });
}

/**
 * Claude Code's first screen, `sbx run claude` on an existing sandbox against `docker exec -it` of
 * the same command into the same container (same user, folder, TERM and the agent's variable),
 * interleaved. Not logged in (as here), Claude draws its header, the prompt box and the status line
 * under it ("⏵⏵ bypass permissions on … Not logged in · run /login"); that status line is the last
 * line of its first frame, so it is the marker.
 */
async function firstScreens(): Promise<{ sbx: Timing; docker: Timing }> {
  must(...sbx('template', 'build', 'claude'));
  const ws = workspace();
  must(process.execPath, [SBX, 'create', 'claude'], { cwd: ws });
  const id = must('docker', ['ps', '-q', '--filter', `label=dev.sbx.workspace=${ws}`]).trim();
  // The identity sbx runs the agent as (see execUser): the workspace owner, root staying root.
  const [uid, gid] = must('docker', [
    'inspect',
    '--format',
    '{{index .Config.Labels "dev.sbx.uid"}} {{index .Config.Labels "dev.sbx.gid"}}',
    id,
  ])
    .trim()
    .split(' ');
  const user = uid === '0' ? [] : ['-u', `${uid}:${gid}`, '-e', 'HOME=/home/agent'];
  const marker = /bypass\s+permissions\s+on/;
  const viaSbx = [process.execPath, SBX, 'run', 'claude'];
  const viaDocker = [
    'docker',
    'exec',
    '-it',
    ...user,
    '-w',
    ws,
    '-e',
    'TERM=xterm-256color',
    '-e',
    'DISABLE_AUTOUPDATER=1',
    id,
    'claude',
    '--dangerously-skip-permissions',
  ];
  const times = { sbx: [] as number[], docker: [] as number[] };
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const a = await firstScreen(viaSbx, marker, ws);
    const b = await firstScreen(viaDocker, marker, ws);
    if (i >= WARMUP) {
      times.sbx.push(a);
      times.docker.push(b);
    }
  }
  const timing = (xs: number[]): Timing => {
    const sorted = [...xs].sort((a, b) => a - b);
    return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, runs: xs.map(Math.round) };
  };
  return { sbx: timing(times.sbx), docker: timing(times.docker) };
}

const injectionLine = (i: Record<string, number | string>) =>
  `- injecting host: ${Number(i.addedLatencyMs) >= 0 ? '+' : ''}${i.addedLatencyMs} ms median per request (${i.injectedMedianMs} against ${i.tunnelledMedianMs} ms tunnelled, ${i.requests} requests each, a new connection each; budget ≤ 5 ms: ${Number(i.addedLatencyMs) <= 5 ? 'ok' : 'OVER'}); ${i.body} body: ${i.injectedMiBps} MiB/s injected, ${i.tunnelledMiBps} MiB/s tunnelled (${Math.round(Number(i.throughputRatio) * 100)}%; budget ≥ 80%: ${Number(i.throughputRatio) >= 0.8 ? 'ok' : 'UNDER'})`;

async function main(): Promise<void> {
  const results: Record<string, unknown> = {
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  };
  const figures: Array<{
    what: string;
    sbx: number;
    baseline: number;
    baselineName: string;
    budget?: number;
    unit?: string;
  }> = [];
  const ratio = (
    what: string,
    a: Timing | number,
    b: Timing | number,
    baselineName: string,
    budget?: number,
  ) => {
    const x = typeof a === 'number' ? a : a.median;
    const y = typeof b === 'number' ? b : b.median;
    figures.push({ what, sbx: x, baseline: y, baselineName, ...(budget !== undefined ? { budget } : {}) });
  };
  cleanup();
  try {
    must(...sbx('template', 'build', 'shell'));
    const image = must('docker', ['image', 'inspect', '--format', '{{.Id}}', 'sbx/base:latest']).trim();

    // 1. Start-up.
    const node = measure(process.execPath, ['-e', '']);
    results.timings = { node };
    const timings = results.timings as Record<string, Timing>;
    if (want('startup')) {
      const version = measure(...sbx('--version'));
      const help = measure(...sbx('--help'));
      ratio('sbx --version', version, node, "node -e ''", 1.5);
      ratio('sbx --help', help, node, "node -e ''");
      Object.assign(timings, { version, help });
    }

    // 2. Listing, with the sandboxes there are now and with SANDBOXES more.
    const before = must(...sbx('ls', '-q'))
      .split('\n')
      .filter(Boolean).length;
    if (want('ls')) {
      const ls0 = measure(...sbx('ls'));
      const ps0 = measure('docker', ['ps', '-a']);
      ratio(`sbx ls (${before} sandboxes)`, ls0, ps0, 'docker ps -a');
      ratio(`sbx ls (${before} sandboxes) vs node`, ls0, node, "node -e ''");
      Object.assign(timings, { ls0, ps0 });
    }
    // Sandboxes to list (SANDBOXES of them), or one for the sections that reattach to it (and for the
    // scale section, whose runs then find the egress proxy up, as after any first sandbox).
    const needed = want('ls')
      ? SANDBOXES
      : want('reattach', 'footprint', 'proxy', 'gvisor', 'peer', 'scale')
        ? 1
        : 0;
    const workspaces = Array.from({ length: needed }, () => workspace());
    for (let i = 0; i < workspaces.length; i += 5)
      await Promise.all(
        workspaces.slice(i, i + 5).map(
          (ws) =>
            new Promise<void>((done, fail) => {
              const child = spawn(process.execPath, [SBX, 'create', 'shell'], {
                cwd: ws,
                env,
                stdio: 'ignore',
              });
              child.on('close', (code) => (code === 0 ? done() : fail(new Error(`create failed in ${ws}`))));
            }),
        ),
      );
    if (want('ls')) {
      const lsN = measure(...sbx('ls'));
      const psN = measure('docker', ['ps', '-a']);
      ratio(`sbx ls (${before + SANDBOXES} sandboxes)`, lsN, psN, 'docker ps -a');
      ratio(`sbx ls (${before + SANDBOXES} sandboxes) vs node`, lsN, node, "node -e ''", 1.5);
      Object.assign(timings, { lsN, psN });
    }

    // 3. Reattach to a running sandbox, against docker exec into the same container.
    const ws = workspaces[0] ?? '';
    const id = ws ? must('docker', ['ps', '-q', '--filter', `label=dev.sbx.workspace=${ws}`]).trim() : '';
    let reattach: Timing | undefined;
    if (want('reattach', 'gvisor', 'peer')) {
      reattach = measure(process.execPath, [SBX, 'run', 'shell', '--', 'true'], () => ({ cwd: ws }));
      const exec = measure('docker', ['exec', id, 'true']);
      ratio('reattach: sbx run shell -- true', reattach, exec, 'docker exec ID true', 1.5);
      Object.assign(timings, { reattach, exec });
    }

    // 4. Cold: a new workspace each time (image present), against docker run --rm of the same image.
    let cold: Timing | undefined;
    if (want('cold', 'gvisor', 'docker')) {
      cold = measure(process.execPath, [SBX, 'run', 'shell', '--', 'true'], () => ({ cwd: workspace() }));
      const dockerRun = measure('docker', ['run', '--rm', '--label', LABEL, image, 'true']);
      ratio(
        'cold: sbx run shell -- true (new workspace)',
        cold,
        dockerRun,
        'docker run --rm IMAGE true',
        1.5,
      );
      Object.assign(timings, { cold, dockerRun });
    }

    // 5. Template no-op: the check alone, and no build call on a run.
    if (want('template')) {
      const noop = measure(...sbx('template', 'build', 'shell'));
      const debug = run(process.execPath, [SBX, 'run', 'shell', '--debug', '--', 'true'], {
        cwd: workspace(),
      }).out;
      const buildCalls = debug.split('\n').filter((l) => /sbx:engine build image/.test(l)).length;
      ratio('template no-op: sbx template build shell', noop, node, "node -e ''");
      results.templateNoop = { checkMs: noop.median, buildCallsOnRun: buildCalls, budgetMs: 250 };
      Object.assign(timings, { noop });
    }

    // 6. Scale.
    if (want('scale')) {
      const many = Array.from({ length: SCALE }, () => workspace());
      const spread = await concurrently(SCALE, (i) => many[i]!);
      const spreadContainers = many.filter((w) =>
        must('docker', ['ps', '-aq', '--filter', `label=dev.sbx.workspace=${w}`]).trim(),
      ).length;
      const one = workspace();
      const same = await concurrently(SCALE, () => one);
      const sameContainers = must('docker', ['ps', '-aq', '--filter', `label=dev.sbx.workspace=${one}`])
        .split('\n')
        .filter(Boolean).length;
      const docker = await concurrently(SCALE, () => ROOT, [
        'docker',
        ['run', '--rm', '--label', LABEL, image, 'true'],
      ]);
      results.scale = {
        [`${SCALE} workspaces at once`]: {
          wallMs: Math.round(spread.ms),
          failures: spread.failures,
          containers: spreadContainers,
        },
        [`${SCALE} runs in one workspace at once`]: {
          wallMs: Math.round(same.ms),
          failures: same.failures,
          containers: sameContainers,
        },
      };
      results.scaleBaseline = {
        [`${SCALE} docker run --rm at once`]: { wallMs: Math.round(docker.ms), failures: docker.failures },
      };
      ratio(
        `${SCALE} sbx run in ${SCALE} new workspaces at once (wall)`,
        spread.ms,
        docker.ms,
        `${SCALE} docker run --rm at once`,
        2,
      );
    }

    // 7. Footprint.
    if (want('footprint')) {
      const sizes = JSON.parse(
        `[${must('docker', ['ps', '-s', '--filter', `id=${id}`, '--format', '{{json .}}'])
          .trim()
          .split('\n')
          .join(',')}]`,
      ) as Array<{ Size: string }>;
      const rw = /^([\d.]+)\s*([kMG]?B)/.exec(sizes[0]?.Size ?? '');
      const unit: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 };
      const diskBytes = rw ? Number(rw[1]) * (unit[rw[2]!] ?? 1) : Number.NaN;
      const sandboxMem = memoryOf(id);
      const withNetworks = must('docker', ['network', 'ls', '-q', '--filter', 'label=dev.sbx.network'])
        .split('\n')
        .filter(Boolean).length;
      const proxyMem = existsSync('/proc') ? memoryOf(PROXY) : Number.NaN;
      const rss = await peakRss(process.execPath, [SBX, 'run', 'shell', '--', 'true'], ws);
      results.footprint = {
        diskPerIdleSandboxBytes: diskBytes,
        idleSandboxMemoryBytes: sandboxMem,
        proxyMemoryBytes: proxyMem,
        sandboxesSharingProxy: withNetworks,
        proxyShareBytes: proxyMem / Math.max(1, withNetworks),
        sbxPeakRssDuringAttachBytes: rss,
        budgets: { diskBytes: 20e6, idleMemoryBytes: 10 * 2 ** 20 },
      };
    }

    // 9. Egress proxy throughput: a large npm tarball through the proxy (in the sandbox) and direct
    // (a container of the same image on Docker's default network). Throughput is the body's bytes
    // over the time after the first byte; the set-up before it (CONNECT, the proxy's DNS lookup,
    // one more TLS hop) is reported apart.
    if (want('proxy')) {
      const tarball = 'https://registry.npmjs.org/@biomejs/cli-linux-x64/-/cli-linux-x64-2.6.8.tgz';
      const curl = [
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{time_total} %{time_starttransfer} %{size_download}',
        tarball,
      ];
      const parse = (out: string) => {
        const [total, first, size] = out.trim().split(/\s+/).map(Number);
        return { mbps: size! / 1e6 / (total! - first!), firstByteMs: first! * 1000, size: size! };
      };
      const proxied: Array<ReturnType<typeof parse>> = [];
      const direct: Array<ReturnType<typeof parse>> = [];
      for (let i = 0; i < Math.max(1, Math.min(RUNS, 5)); i++) {
        proxied.push(parse(must(process.execPath, [SBX, 'exec', '.', '--', ...curl], { cwd: ws })));
        direct.push(
          parse(
            must('docker', [
              'run',
              '--rm',
              '--label',
              LABEL,
              '--entrypoint',
              'curl',
              image,
              ...curl.slice(1),
            ]),
          ),
        );
      }
      const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const throughput = {
        url: tarball,
        bytes: proxied[0]!.size,
        proxiedMBps: mid(proxied.map((p) => p.mbps)),
        directMBps: mid(direct.map((d) => d.mbps)),
        proxiedFirstByteMs: mid(proxied.map((p) => p.firstByteMs)),
        directFirstByteMs: mid(direct.map((d) => d.firstByteMs)),
        budget: 'proxied throughput at least 90% of direct',
      };
      results.throughput = throughput;
      // As times for the same bytes, so that the ratio reads like the others (1.25x = 20% less throughput).
      ratio(
        'download through the egress proxy (time after the first byte)',
        1000 / throughput.proxiedMBps,
        1000 / throughput.directMBps,
        'direct from a container',
        1 / 0.9,
      );
    }

    if (want('injection')) results.injection = await injection();

    if (want('first-screen')) {
      const screens = await firstScreens();
      ratio(
        "time to Claude Code's first screen: sbx run claude (existing sandbox)",
        screens.sbx,
        screens.docker,
        'docker exec -it ID claude --dangerously-skip-permissions',
        1.2,
      );
      Object.assign(results.timings as Record<string, Timing>, {
        firstScreenSbx: screens.sbx,
        firstScreenDocker: screens.docker,
      });
    }

    // 10. gVisor beside runc, when the engine has runsc: cold create, reattach, a CPU-bound command
    // and a file-heavy one (copy a tree of small files, git add it), each in a runc and a gVisor sandbox.
    const runtimes = JSON.parse(must('docker', ['info', '--format', '{{json .Runtimes}}'])) as Record<
      string,
      unknown
    >;
    if (runtimes.runsc && reattach && cold && want('gvisor')) {
      const gvisorCold = measure(
        process.execPath,
        [SBX, 'run', 'shell', '--runtime', 'runsc', '--', 'true'],
        () => ({ cwd: workspace() }),
      );
      ratio('gVisor cold: sbx run shell --runtime runsc -- true', gvisorCold, cold, 'the same under runc');
      const gws = workspace();
      must(process.execPath, [SBX, 'create', 'shell', '--runtime', 'runsc'], { cwd: gws });
      const gvisorReattach = measure(process.execPath, [SBX, 'run', 'shell', '--', 'true'], () => ({
        cwd: gws,
      }));
      ratio('gVisor reattach: sbx run shell -- true', gvisorReattach, reattach, 'the same under runc');
      const cpu = ['bash', '-c', 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'];
      const files = [
        'bash',
        '-c',
        'd=$(mktemp -d) && cp -r /usr/share/doc "$d/t" && git -C "$d/t" init -q && git -C "$d/t" add -A && rm -rf "$d"',
      ];
      for (const [what, cmd] of [
        ['CPU-bound (a 300 000-step shell loop)', cpu],
        ['file-heavy (copy /usr/share/doc, git add it)', files],
      ] as const) {
        const g = measure(process.execPath, [SBX, 'exec', '.', '--', ...cmd], () => ({ cwd: gws }));
        const r = measure(process.execPath, [SBX, 'exec', '.', '--', ...cmd], () => ({ cwd: ws }));
        ratio(`gVisor ${what}`, g, r, 'the same under runc');
      }
    } else {
      results.gvisor = 'skipped: the engine has no runsc runtime (see docs/runtimes.md)';
    }

    // 11. Docker inside (--docker): cold create with and without the inner engine (its image layer
    // built once, untimed), and `docker run --rm IMAGE true` on the inner engine against the host's.
    if (want('docker') && cold) {
      must(process.execPath, [SBX, 'create', 'shell', '--docker'], { cwd: workspace() });
      const dockerCold = measure(process.execPath, [SBX, 'run', 'shell', '--docker', '--', 'true'], () => ({
        cwd: workspace(),
      }));
      ratio(
        'cold with --docker: sbx run shell --docker -- true',
        dockerCold,
        cold,
        'the same without --docker',
      );
      const dws = workspace();
      const inner = 'debian:trixie-slim';
      must('docker', ['save', inner, '-o', join(dws, 'image.tar')]);
      must(process.execPath, [SBX, 'create', 'shell', '--docker'], { cwd: dws });
      must(process.execPath, [SBX, 'exec', '.', '--', 'docker', 'load', '-q', '-i', join(dws, 'image.tar')], {
        cwd: dws,
      });
      const did = must('docker', ['ps', '-q', '--filter', `label=dev.sbx.workspace=${dws}`]).trim();
      const innerRun = measure('docker', ['exec', did, 'docker', 'run', '--rm', inner, 'true']);
      const hostRun = measure('docker', ['run', '--rm', '--label', LABEL, inner, 'true']);
      ratio(
        'docker run --rm IMAGE true inside a --docker sandbox',
        innerRun,
        hostRun,
        'the same on the host engine',
      );
    }

    // 8. Peer: the Dev Containers CLI, exec into a container it brought up from the same image.
    if (PEER) {
      const cache = join(homedir(), '.cache', 'sbx-bench');
      const cli = join(cache, 'node_modules', '.bin', 'devcontainer');
      if (!existsSync(cli)) {
        mkdirSync(cache, { recursive: true });
        must('npm', ['install', '--prefix', cache, '--no-audit', '--no-fund', '@devcontainers/cli@0.89.0']);
      }
      const dc = workspace();
      mkdirSync(join(dc, '.devcontainer'));
      writeFileSync(
        join(dc, '.devcontainer', 'devcontainer.json'),
        JSON.stringify({ image, runArgs: ['--label', LABEL], overrideCommand: true }),
      );
      must(cli, ['up', '--workspace-folder', dc]);
      const peer = measure(cli, ['exec', '--workspace-folder', dc, 'true']);
      ratio('peer: devcontainer exec true', reattach!, peer, 'devcontainer exec (same reattach)');
      results.peer = { devcontainerExecMs: peer.median, sbxReattachMs: reattach!.median };
    }

    results.figures = figures.map((f) => ({
      ...f,
      sbx: Math.round(f.sbx),
      baseline: Math.round(f.baseline),
      ratio: Number((f.sbx / f.baseline).toFixed(2)),
      ...(f.budget !== undefined ? { withinBudget: f.sbx / f.baseline <= f.budget } : {}),
    }));
  } finally {
    cleanup();
  }

  writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  const rows = (
    results.figures as Array<{
      what: string;
      sbx: number;
      baseline: number;
      baselineName: string;
      ratio: number;
      budget?: number;
      withinBudget?: boolean;
    }>
  ).map(
    (f) =>
      `| ${f.what} | ${f.sbx} ms | ${f.baselineName}: ${f.baseline} ms | ${f.ratio}× | ${f.budget ? `≤ ${Number(f.budget.toFixed(2))}× ${f.withinBudget ? 'ok' : 'OVER'}` : ''} |`,
  );
  const fp = results.footprint as Record<string, number> | undefined;
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  process.stdout.write(
    [
      `sbx benchmark: ${RUNS} runs (median), ${WARMUP} warm-ups, ${(results.machine as { cpus: number }).cpus} CPUs, node ${process.version}`,
      '',
      '| what | sbx | baseline | ratio | budget |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
      '',
      results.templateNoop &&
        `- template no-op check: ${Math.round((results.templateNoop as { checkMs: number }).checkMs)} ms (budget 250 ms, start-up included); build calls during a run with an unchanged template: ${(results.templateNoop as { buildCallsOnRun: number }).buildCallsOnRun}`,
      results.scale && `- scale: ${JSON.stringify(results.scale)}; ${JSON.stringify(results.scaleBaseline)}`,
      results.throughput &&
        `- egress proxy: ${(results.throughput as { proxiedMBps: number }).proxiedMBps.toFixed(0)} MB/s through it, ${(results.throughput as { directMBps: number }).directMBps.toFixed(0)} MB/s direct; first byte after ${Math.round((results.throughput as { proxiedFirstByteMs: number }).proxiedFirstByteMs)} ms through it, ${Math.round((results.throughput as { directFirstByteMs: number }).directFirstByteMs)} ms direct`,
      results.injection && injectionLine(results.injection as Record<string, number | string>),
      fp &&
        `- disk per idle sandbox: ${mb(fp.diskPerIdleSandboxBytes!)} (budget 20 MB); idle sandbox memory: ${mb(fp.idleSandboxMemoryBytes!)} (budget 10 MiB); egress proxy: ${mb(fp.proxyMemoryBytes!)} shared by ${fp.sandboxesSharingProxy} sandboxes (${mb(fp.proxyShareBytes!)} each); sbx peak RSS during an attach: ${mb(fp.sbxPeakRssDuringAttachBytes!)}`,
      `- every figure: ${OUT}`,
      '',
    ]
      .filter((line) => typeof line === 'string')
      .join('\n'),
  );
}

await main();
