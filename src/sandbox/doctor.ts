import { existsSync, statfsSync } from 'node:fs';
import { configFile, readConfig } from '../config/config.js';
import { caDir, caProblem } from '../config/egress-ca.js';
import { readSecrets, secretsFile } from '../config/secrets.js';
import { extraCaCerts, HOST_LOCAL_CA_DIR } from '../config/tls-proxy.js';
import { type EngineInfo, engineInfo } from '../engine/system.js';
import { engineKey } from '../network/egress-secrets.js';
import { proxyTrouble } from '../network/proxy.js';
import { SbxError } from '../shared/errors.js';
import { formatBytes } from '../shared/parse.js';
import { GVISOR, INNER_SANDBOX_COST, registerHint } from './runtime.js';
import { templateStatuses } from './template-image.js';

export interface Check {
  name: string;
  /** fail: `sbx run` cannot work until it is fixed; warn: it works, with a cost or a risk. */
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
  /** For a failure: the exit code sbx would give for it. */
  exitCode?: number;
}

const MIN_FREE = 2 * 2 ** 30;

/** Everything `sbx run` depends on, each checked on its own so one failure does not hide the others. */
export async function runChecks(workspace: string): Promise<Check[]> {
  const checks: Check[] = [];
  const failed = (name: string, err: unknown): Check => {
    if (!(err instanceof SbxError)) throw err;
    return {
      name,
      status: 'fail',
      detail: err.message,
      ...(err.hint ? { fix: err.hint } : {}),
      exitCode: err.exitCode,
    };
  };

  let configOk = true;
  try {
    const config = await readConfig();
    checks.push({
      name: 'config',
      status: 'ok',
      detail: existsSync(configFile()) ? `${configFile()} is valid` : `no ${configFile()} (defaults apply)`,
    });
    const certs = extraCaCerts(config.caCerts);
    const source = process.env.SBX_CA_CERTS
      ? 'SBX_CA_CERTS'
      : config.caCerts
        ? 'config caCerts'
        : HOST_LOCAL_CA_DIR;
    checks.push({
      name: 'ca-certificates',
      status: 'ok',
      detail: certs.length
        ? `${certs.length} extra CA certificate${certs.length > 1 ? 's' : ''} from ${source} (${certs.map((c) => c.name).join(', ')}), trusted in templates and sandboxes`
        : `no extra CA certificates (${source}); behind a TLS-intercepting proxy, set one with \`sbx config set caCerts FILE\``,
    });
  } catch (err) {
    configOk = false;
    checks.push(failed('config', err));
  }

  let engine: EngineInfo | undefined;
  try {
    engine = await engineInfo();
    checks.push({
      name: 'engine',
      status: 'ok',
      detail: `${engine.flavour.name} ${engine.version} (API ${engine.apiVersion}) on ${engine.os}, ${engine.cpus} CPUs, ${formatBytes(engine.memTotal)} memory, at ${engine.url} (${engine.reason})${engine.rootless ? ', rootless' : ''}`,
    });
  } catch (err) {
    checks.push(failed('engine', err));
  }

  if (engine) {
    const gvisor = engine.runtimes.includes(GVISOR);
    checks.push({
      name: 'runtimes',
      status: 'ok',
      detail: `the engine has the runtimes ${engine.runtimes.join(', ') || '(none listed)'}${engine.defaultRuntime ? ` (default ${engine.defaultRuntime})` : ''}; gVisor (${GVISOR}) is ${gvisor ? 'among them: `--runtime runsc` runs a sandbox on its own application kernel' : 'not among them'}`,
      ...(gvisor
        ? {}
        : { fix: `For a stronger wall than the shared kernel: ${registerHint(GVISOR, engine.podman)}` }),
    });
    checks.push({
      name: 'inner guard',
      status: 'ok',
      detail: `--inner-sandbox lets the agent's own sandbox (Claude Code's, srt) work inside sbx's. ${INNER_SANDBOX_COST} gVisor is the way to have the inner guard without that cost${gvisor ? ' (`--runtime runsc --inner-sandbox`)' : ', and this engine does not have it'}, with a runsc that runs bubblewrap: Debian 12's (2022) does not (see docs/inner-sandbox.md).`,
    });
  }
  checks.push(secretsCheck());
  if (engine) checks.push(caCheck());
  if (engine) {
    const trouble = await proxyTrouble().catch(
      (err: Error) => `the egress proxy could not be inspected: ${err.message}`,
    );
    checks.push({
      name: 'egress-proxy',
      status: trouble ? 'warn' : 'ok',
      detail: trouble ?? 'running, never restarted (or not made yet)',
      ...(trouble
        ? {
            fix: 'If it keeps restarting, a sandbox may be flooding it: see `sbx network log SANDBOX` for a flood of refusals or the connection cap (config proxy.connections).',
          }
        : {}),
    });
  }

  if (engine?.rootless) {
    // How the engine's user namespace is bridged (see sandboxOwner): files stay the user's.
    checks.push({
      name: 'ownership',
      status: 'ok',
      detail:
        engine.flavour.userMapping === 'keep-id'
          ? 'rootless Podman: sandboxes map you to your own UID inside (keep-id), so what the agent writes in your workspaces is yours; a workspace of another user is not writable there'
          : 'rootless Docker: the agent runs as root inside, which is you outside (and no one more), so what it writes in your workspaces is yours; a workspace of another user is not writable there',
    });
  }

  if (engine) {
    if (engine.url.startsWith('unix://') && existsSync(engine.dockerRootDir)) {
      const fs = statfsSync(engine.dockerRootDir);
      const free = fs.bavail * fs.bsize;
      checks.push({
        name: 'disk',
        status: free < MIN_FREE ? 'warn' : 'ok',
        detail: `${formatBytes(free)} free for images at ${engine.dockerRootDir}`,
        ...(free < MIN_FREE
          ? {
              fix: 'Agent templates need about 1-2 GiB: free space, or remove unused images (docker image prune).',
            }
          : {}),
      });
    } else {
      checks.push({
        name: 'disk',
        status: 'ok',
        detail: `free space not checked: the engine's storage (${engine.dockerRootDir || 'unknown'}) is not on this machine`,
      });
    }
    if (configOk) {
      try {
        const templates = (await templateStatuses(workspace)).filter((t) => t.origin === 'built-in');
        const notBuilt = templates.filter((t) => t.state !== 'built');
        checks.push({
          name: 'templates',
          status: notBuilt.length ? 'warn' : 'ok',
          detail: notBuilt.length
            ? `not built yet: ${notBuilt.map((t) => `${t.name} (${t.state})`).join(', ')}; the first \`sbx run\` of those builds them (minutes)`
            : `all ${templates.length} built-in templates are built and current`,
          ...(notBuilt.length ? { fix: `Build them ahead with \`sbx template build\`.` } : {}),
        });
      } catch (err) {
        checks.push(failed('templates', err));
      }
    }
  }
  return checks;
}

/** The secret store: readable by its owner only, and valid. */
function secretsCheck(): Check {
  try {
    const secrets = readSecrets();
    return {
      name: 'secrets',
      status: 'ok',
      detail: existsSync(secretsFile())
        ? `${secrets.length} secret${secrets.length === 1 ? '' : 's'} in ${secretsFile()} (mode 600, yours only)`
        : `no secrets stored (${secretsFile()} is made by \`sbx secret set\`)`,
    };
  } catch (err) {
    if (!(err instanceof SbxError)) throw err;
    return {
      name: 'secrets',
      status: 'fail',
      detail: err.message,
      ...(err.hint ? { fix: err.hint } : {}),
      exitCode: err.exitCode,
    };
  }
}

/** The engine's CA (made on the first sandbox with a secret): its key must be the user's alone. */
function caCheck(): Check {
  const key = engineKey();
  const problem = caProblem(key);
  if (problem)
    return {
      name: 'egress-ca',
      status: 'fail',
      detail: `sbx's certificate authority for this engine: ${problem}`,
      fix: `chmod 600 ${caDir(key)}/ca.key, or remove ${caDir(key)} (sbx makes a new one; recreate sandboxes made since)`,
      exitCode: 78,
    };
  return {
    name: 'egress-ca',
    status: 'ok',
    detail: existsSync(`${caDir(key)}/ca.key`)
      ? `sbx's certificate authority for this engine is in ${caDir(key)} (key mode 600, never in a container)`
      : 'no certificate authority yet for this engine: sbx makes one for the first sandbox with a secret',
  };
}
