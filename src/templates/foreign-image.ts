/**
 * Dev container images sbx does not control (Alpine, Fedora, an image without a package manager):
 * what a probe run of the image finds there (package manager, libc, Node.js, the commands sbx-init
 * uses), how sbx's base steps are installed with that image's own package manager (one table of
 * package names), and which agents cannot run there, with the reason.
 */
import { runHelper } from '../engine/containers.js';
import { SbxError } from '../shared/errors.js';
import { extraLabels } from '../shared/labels.js';

export type PackageManager = 'apt-get' | 'apk' | 'dnf' | 'microdnf' | 'yum';
const MANAGERS: PackageManager[] = ['apt-get', 'apk', 'dnf', 'microdnf', 'yum'];

/** What a probe run of an image found. */
export interface ImageFacts {
  manager: PackageManager | undefined;
  libc: 'glibc' | 'musl' | 'unknown';
  /** The commands found on the image's PATH, of those sbx looks for. */
  has: string[];
  /** `node --version`, when the image has Node.js. */
  node: string | undefined;
}

/** A Debian-like image: sbx's base steps apply as they are. */
export const APT_IMAGE: ImageFacts = { manager: 'apt-get', libc: 'glibc', has: [], node: undefined };

/** What sbx-init needs from the image when sbx installs nothing there (sbx brings tini and bash). */
const INIT_NEEDS = ['id', 'chown', 'mkdir', 'ln', 'rm', 'touch', 'sed', 'grep', 'dirname', 'find', 'sleep'];
/** What every sandbox normally has and sbx cannot bring without a package manager: named in a warning. */
const EXPECTED = ['sudo', 'git', 'tmux', 'curl', 'jq', 'node', 'npm'];
const LOOKED_FOR = [...new Set([...INIT_NEEDS, ...EXPECTED, 'bash', 'useradd', 'usermod'])];

/** Run with /bin/sh in the image as root, no network: prints what it finds, one fact a line. */
export const PROBE_SCRIPT = `for m in ${MANAGERS.join(' ')}; do command -v $m >/dev/null 2>&1 && { echo manager=$m; break; }; done
libc=unknown
for f in /lib/ld-musl-* /usr/lib/ld-musl-*; do [ -e "$f" ] && libc=musl; done
for f in /lib*/ld-linux* /lib/*/ld-linux* /usr/lib*/ld-linux* /usr/lib/*/ld-linux*; do [ -e "$f" ] && [ "$libc" = unknown ] && libc=glibc; done
echo libc=$libc
for c in ${LOOKED_FOR.join(' ')}; do command -v $c >/dev/null 2>&1 && echo has=$c; done
command -v node >/dev/null 2>&1 && echo node=$(node --version 2>/dev/null)
echo probe=done
`;

export function parseProbe(output: string): ImageFacts | undefined {
  const lines = output.split('\n').map((l) => l.trim());
  if (!lines.includes('probe=done')) return undefined;
  const value = (key: string) =>
    lines.filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
  const manager = value('manager')[0] as PackageManager | undefined;
  const libc = value('libc')[0];
  return {
    manager: manager && MANAGERS.includes(manager) ? manager : undefined,
    libc: libc === 'glibc' || libc === 'musl' ? libc : 'unknown',
    has: value('has'),
    node: value('node')[0] || undefined,
  };
}

/** Runs the probe in a throw-away container of the image (no network, as root). */
export async function probeImage(ref: string): Promise<ImageFacts> {
  let result: { code: number; output: string } | undefined;
  try {
    result = await runHelper({
      Image: ref,
      User: '0:0',
      Entrypoint: ['/bin/sh', '-c'],
      Cmd: [PROBE_SCRIPT],
      Labels: extraLabels(),
      HostConfig: { NetworkMode: 'none' },
    });
  } catch (err) {
    throw new SbxError(
      'buildFailed',
      `The dev container's image ${ref} could not be started with /bin/sh to see what it has (${(err as Error).message.split('\n')[0]}): sbx needs a shell in the image to add itself, so no agent can run there.`,
      {
        cause: err,
        hint: 'Use an image with /bin/sh (e.g. add busybox to it), or run with --template NAME to use an sbx template instead. Nothing was created.',
      },
    );
  }
  const facts = parseProbe(result.output);
  if (!facts)
    throw new SbxError(
      'buildFailed',
      `Looking at what the dev container's image ${ref} has failed (exit ${result.code}): ${result.output.trim().split('\n').slice(-1)[0] ?? ''}`,
      { hint: 'Run with --debug for the details, or with --template NAME to use an sbx template instead.' },
    );
  return facts;
}

/**
 * sbx's base packages (templates/base installs them with apt-get) under the other package managers'
 * names; null where the package is not needed there (venv is part of Alpine's and Fedora's python3).
 * tini is not asked of dnf: it is not in RHEL's repositories, and sbx brings its static build.
 */
export const PACKAGE_NAMES: Record<string, { apk: string | null; dnf: string | null }> = {
  'bash-completion': { apk: 'bash-completion', dnf: 'bash-completion' },
  bubblewrap: { apk: 'bubblewrap', dnf: 'bubblewrap' },
  'ca-certificates': { apk: 'ca-certificates', dnf: 'ca-certificates' },
  curl: { apk: 'curl', dnf: 'curl' },
  git: { apk: 'git', dnf: 'git' },
  jq: { apk: 'jq', dnf: 'jq' },
  less: { apk: 'less', dnf: 'less' },
  nodejs: { apk: 'nodejs', dnf: 'nodejs' },
  npm: { apk: 'npm', dnf: 'npm' },
  'openssh-client': { apk: 'openssh-client', dnf: 'openssh-clients' },
  procps: { apk: 'procps', dnf: 'procps-ng' },
  python3: { apk: 'python3', dnf: 'python3' },
  'python3-venv': { apk: null, dnf: null },
  ripgrep: { apk: 'ripgrep', dnf: 'ripgrep' },
  socat: { apk: 'socat', dnf: 'socat' },
  sudo: { apk: 'sudo', dnf: 'sudo' },
  tini: { apk: 'tini', dnf: null },
  tmux: { apk: 'tmux', dnf: 'tmux' },
  unzip: { apk: 'unzip', dnf: 'unzip' },
  'xz-utils': { apk: 'xz', dnf: 'xz' },
};

/**
 * What Debian has in its base system and the others do not: bash, useradd/usermod, setpriv, GNU
 * find; and on musl the C++ runtime the agents' native binaries (Claude Code's musl build) link to.
 */
const EXTRA_PACKAGES = {
  apk: ['bash', 'shadow', 'setpriv', 'findutils', 'libgcc', 'libstdc++'],
  dnf: ['bash', 'shadow-utils', 'util-linux', 'findutils'],
};

/** The apt packages of templates/base's install step. */
export function aptPackages(baseStep: string): string[] {
  const list = /--no-install-recommends([\s\S]*?)&&/.exec(baseStep)?.[1] ?? '';
  return list.split(/\s+/).filter((p) => p && p !== '\\');
}

/** The install step of sbx's base packages with the image's own package manager (not apt). */
export function installStep(manager: Exclude<PackageManager, 'apt-get'>, apt: string[]): string {
  const family = manager === 'apk' ? 'apk' : 'dnf';
  const unknown = apt.filter((p) => !(p in PACKAGE_NAMES));
  if (unknown.length > 0) throw new Error(`no ${family} name for the base packages ${unknown.join(', ')}`);
  const names = [
    ...apt.map((p) => PACKAGE_NAMES[p]![family]).filter((p): p is string => p !== null),
    ...EXTRA_PACKAGES[family],
  ].join(' ');
  if (manager === 'apk') return `RUN apk add --no-cache ${names} \\\n && update-ca-certificates`;
  // Fedora-like: the CA certificates go into its trust store, and update-ca-certificates (which sbx
  // runs in a sandbox to add its own CA) becomes a shim for update-ca-trust.
  return [
    `RUN ${manager} install -y --setopt=install_weak_deps=0 ${names}`,
    ` && ${manager} clean all`,
    " && printf '#!/bin/sh\\ncp /usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt /etc/pki/ca-trust/source/anchors/ 2>/dev/null\\nexec update-ca-trust\\n' > /usr/local/sbin/update-ca-certificates",
    ' && chmod 755 /usr/local/sbin/update-ca-certificates && update-ca-certificates',
    ' && mkdir -p /etc/ssl/certs && { [ -e /etc/ssl/certs/ca-certificates.crt ] || ln -s /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/certs/ca-certificates.crt; }',
  ].join(' \\\n');
}

/**
 * On an image without a package manager sbx brings static builds from Debian (its base image): tini,
 * bash (sbx-init's and the shell agent's; /bin/bash only where the image has none), and a CA bundle
 * with sbx's extra certificates where the image has none. The agent user is added with useradd, or
 * written into /etc/passwd and /etc/group (busybox images).
 */
export const STATIC_STAGE = 'sbx-static';
export function staticStage(baseFrom: string, certsStep: string): string {
  return [
    `FROM ${baseFrom} AS ${STATIC_STAGE}`,
    certsStep,
    'RUN apt-get update \\',
    ' && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini bash-static ca-certificates \\',
    ' && update-ca-certificates && rm -rf /var/lib/apt/lists/*',
  ].join('\n');
}

export const STATIC_PIECES = [
  `COPY --from=${STATIC_STAGE} /usr/bin/tini-static /usr/local/lib/sbx/tini`,
  `COPY --from=${STATIC_STAGE} /bin/bash-static /usr/local/lib/sbx/bash`,
  `COPY --from=${STATIC_STAGE} /etc/ssl/certs/ca-certificates.crt /usr/local/lib/sbx/ca-certificates.crt`,
  'RUN mkdir -p /run /tmp /home /etc/ssl/certs /etc/sudoers.d && chmod 1777 /tmp \\',
  ' && { [ -e /bin/bash ] || ln -s /usr/local/lib/sbx/bash /bin/bash; } \\',
  ' && { [ -e /etc/ssl/certs/ca-certificates.crt ] || ln -s /usr/local/lib/sbx/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt; }',
].join('\n');

/** Adds the agent user (UID 1000 unless taken) where the image has no useradd. */
export const ADD_AGENT_USER = `{ if command -v useradd >/dev/null 2>&1; then useradd --create-home $(getent passwd 1000 >/dev/null 2>&1 || echo --uid 1000) --user-group --shell /bin/bash agent; \\
 else uid=1000; while grep -q "^[^:]*:[^:]*:$uid:" /etc/passwd 2>/dev/null; do uid=$((uid + 1)); done; \\
   gid=$uid; while grep -q "^[^:]*:[^:]*:$gid:" /etc/group 2>/dev/null; do gid=$((gid + 1)); done; \\
   echo "agent:x:$uid:$gid::/home/agent:/bin/bash" >> /etc/passwd && echo "agent:x:$gid:" >> /etc/group \\
   && mkdir -p /home/agent && chown "$uid:$gid" /home/agent; fi; }`;

const describe = (facts: ImageFacts) =>
  [
    facts.libc === 'unknown' ? 'no C library sbx recognises' : facts.libc,
    facts.manager ?? 'no package manager',
    facts.node ? `Node.js ${facts.node}` : 'no Node.js',
  ].join(', ');

/**
 * Why an agent cannot run on an image, or undefined when it can. With a package manager sbx installs
 * what the agent's template needs; without one, the commands the agent's template steps run
 * (npm, curl) must be in the image, as must the basic commands sbx-init uses.
 */
export function refusal(agent: string, agentSteps: string, facts: ImageFacts): string | undefined {
  if (facts.manager) return undefined;
  const missingInit = INIT_NEEDS.filter((c) => !facts.has.includes(c));
  if (missingInit.length > 0)
    return `sbx's start-up script needs ${missingInit.join(', ')}, which this image lacks (it has: ${describe(facts)})`;
  const needs = ['npm', 'curl'].filter((c) => new RegExp(`^RUN\\b.*\\b${c}\\b`, 'm').test(agentSteps));
  const missing = needs.filter((c) => !facts.has.includes(c));
  if (missing.length === 0) return undefined;
  const adds = missing.includes('npm') ? 'Node.js and npm' : missing.join(' and ');
  return `${agent} is installed with ${missing.join(' and ')}, which this image lacks (it has: ${describe(facts)}), and sbx can only add ${adds} with a package manager (apt-get, apk, dnf, microdnf, yum)`;
}

/** What a sandbox normally has and this image (with nothing installed by sbx) lacks. */
export const missingTools = (facts: ImageFacts): string[] =>
  facts.manager ? [] : EXPECTED.filter((c) => !facts.has.includes(c));
