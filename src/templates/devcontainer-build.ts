/**
 * The image of a dev container sandbox: the project's own image (its `image`, or its `build`), then
 * sbx's layer on top (what templates/base adds, the local features, the agent's template), tagged by
 * a hash of everything that went in, so an unchanged dev container is found and never rebuilt.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import type { CaCert } from '../config/tls-proxy.js';
import { buildImage, type ImageInfo, inspectImage } from '../engine/images.js';
import { SbxError } from '../shared/errors.js';
import { LABEL } from '../shared/labels.js';
import { insideReadStream, readInside } from '../shared/workspace-file.js';
import { buildNetworkOf, type EnsureOptions, ensurePulled, planTemplate } from './build.js';
import { type Devcontainer, devcontainerRepository } from './devcontainer.js';
import {
  ADD_AGENT_USER,
  APT_IMAGE,
  aptPackages,
  type ImageFacts,
  installStep,
  missingTools,
  probeImage,
  refusal,
  STATIC_PIECES,
  staticStage,
} from './foreign-image.js';
import { BUILTIN_DIR, contentHash, contextFiles } from './template.js';

/** Bumped when the way sbx layers itself on a dev container changes. */
const FORMAT = 'sbx-devcontainer-v3';

/** Where the project's Dockerfile (the bytes read and approved, never the file again) goes in the context. */
const OUTSIDE_DOCKERFILE = '.sbx-devcontainer.Dockerfile';

export interface DevcontainerPlan {
  repository: string;
  /** The project image (built from `build`) or the image it names. */
  project: { tag: string; hash: string; build: boolean };
  /** The final image: project + sbx's layer + the agent. */
  tag: string;
  hash: string;
  /** The built-in template whose agent goes on top (base for the shell). */
  agentTemplate: string;
}

const sha = (...parts: Array<string | Buffer>) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? `${p}\0` : p);
  return h.digest('hex');
};

/** The project image's hash: its Dockerfile, context, args and target (or the image it names). */
export function projectHash(
  dc: Devcontainer,
  workspace: string,
): { tag: string; hash: string; build: boolean } {
  const repository = devcontainerRepository(workspace, dc.file);
  if (dc.source.kind === 'image')
    return { tag: dc.source.ref, hash: sha('image', dc.source.ref), build: false };
  const { dockerfile, dockerfileText, context, args, target } = dc.source;
  const hash = sha(
    FORMAT,
    'build',
    dockerfileText,
    relative(context, dockerfile),
    contentHash(context, [], []),
    JSON.stringify(Object.entries(args).sort()),
    target ?? '',
  );
  return { tag: `${repository}-project:${hash.slice(0, 12)}`, hash, build: true };
}

/** Every input of the final image, hashed: project, devcontainer.json, features, sbx's layer, the agent. */
export function planDevcontainer(
  dc: Devcontainer,
  workspace: string,
  agentTemplate: string,
  caCerts: CaCert[],
  project = projectHash(dc, workspace),
  projectId = '',
): DevcontainerPlan {
  const repository = devcontainerRepository(workspace, dc.file);
  const agentPlan = planTemplate(
    { kind: 'folder', name: agentTemplate, dir: join(BUILTIN_DIR, agentTemplate), builtin: true },
    caCerts,
  );
  const hash = sha(
    FORMAT,
    project.hash,
    projectId,
    dc.file.text,
    // A registry feature not fetched yet (listing offline) is known by its reference alone.
    ...dc.features.map(
      (f) =>
        `${f.id}\0${f.dir ? contentHash(f.dir, [], []) : `unfetched:${JSON.stringify(f.ref)}`}\0${JSON.stringify(f.env)}`,
    ),
    agentPlan.hash,
  );
  return {
    repository,
    project,
    tag: `${repository}:${agentTemplate}-${hash.slice(0, 12)}`,
    hash,
    agentTemplate,
  };
}

/**
 * Run as root in sbx's layer with the image's own users as arguments (remoteUser, containerUser, the
 * image's USER, the user with UID 1000): finds the tool folders in their homes that the agent user can
 * reach (rustup/cargo, go, pip --user, nvm, sdkman, deno, bun, volta, pyenv, rbenv, dotnet tools),
 * writes them to /etc/sbx/devcontainer-path, and has sbx-exec (through which every command in the
 * sandbox starts) add them after the image's own PATH.
 */
const USER_TOOLS_SCRIPT = `#!/bin/sh
found=
# Images sbx does not control may lack getent and setpriv (busybox): /etc/passwd, and the folder's mode.
if command -v setpriv >/dev/null 2>&1; then
  reach() { setpriv --reuid=agent --regid=agent --clear-groups test -x "$1"; }
else
  reach() { [ -n "$(find "$1" -maxdepth 0 -perm -001 2>/dev/null)" ]; }
fi
for u in "$@"; do
  case "$u" in ''|root|0|agent) continue ;; esac
  home=$({ getent passwd "$u" 2>/dev/null || grep -E "^$u:|^[^:]*:[^:]*:$u:" /etc/passwd; } | head -n 1 | cut -d: -f6)
  case "$home" in ''|/|/root|/home/agent|/nonexistent) continue ;; esac
  for d in "$home/.local/bin" "$home/bin" "$home/.cargo/bin" "$home/go/bin" "$home/.deno/bin" \
    "$home/.bun/bin" "$home/.volta/bin" "$home/.pyenv/shims" "$home/.pyenv/bin" "$home/.rbenv/shims" \
    "$home/.dotnet/tools" "$home"/.nvm/versions/node/*/bin "$home"/.sdkman/candidates/*/current/bin; do
    [ -d "$d" ] || continue
    case ":$found:" in *":$d:"*) continue ;; esac
    if reach "$d"; then
      found="$found\${found:+:}$d"
    else
      echo "sbx: $d (the tools of the image's user $u) is not readable by the agent user: left off its PATH" >&2
    fi
  done
done
[ -n "$found" ] || exit 0
mkdir -p /etc/sbx
printf '%s\n' "$found" > /etc/sbx/devcontainer-path
echo "sbx: the agent's PATH ends with $found" >&2
{
  head -n 1 /usr/local/bin/sbx-exec
  echo '# The dev container image user'"'"'s tool folders (see /etc/sbx/devcontainer-path).'
  echo 'if [ -r /etc/sbx/devcontainer-path ]; then PATH="$PATH:$(cat /etc/sbx/devcontainer-path)"; export PATH; fi'
  tail -n +2 /usr/local/bin/sbx-exec
} > /tmp/sbx-exec && cat /tmp/sbx-exec > /usr/local/bin/sbx-exec && rm /tmp/sbx-exec
`;

/** Single-quotes a value for /bin/sh. */
const shq = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

/** A Dockerfile's instructions without its FROM lines. */
const withoutFrom = (dockerfile: string) =>
  dockerfile
    .split('\n')
    .filter((l) => !/^\s*FROM\s/i.test(l))
    .join('\n');

/** The image templates/base starts FROM (Debian), whose static tini and bash sbx brings to other images. */
const baseImage = () =>
  /^\s*FROM\s+(\S+)/im.exec(readFileSync(join(BUILTIN_DIR, 'base', 'Dockerfile'), 'utf8'))?.[1] ??
  'debian:trixie-slim';

/** A Dockerfile's instructions, each with its continuation lines (comments and blank lines on their own). */
const instructions = (dockerfile: string): string[] =>
  dockerfile.split('\n').reduce<string[]>((all, line, i, lines) => {
    if (i > 0 && lines[i - 1]!.trimEnd().endsWith('\\')) all[all.length - 1] += `\n${line}`;
    else all.push(line);
    return all;
  }, []);

/**
 * templates/base's steps for an image: as they are where it has apt-get; with its own package
 * manager's install step (and sbx's static tini) on Alpine and Fedora-like images; on an image
 * without a package manager, only what sbx brings (static tini and bash, a CA bundle), the agent user
 * (useradd, else /etc/passwd), and undici and srt where the image has npm.
 */
function baseSteps(facts: ImageFacts): { stage: string; steps: string } {
  const base = readFileSync(join(BUILTIN_DIR, 'base', 'Dockerfile'), 'utf8');
  const apt = facts.manager === 'apt-get';
  const steps = instructions(base).filter((i) => !/^\s*FROM\s/i.test(i));
  const certsStep = steps.find((i) => /^COPY certs\//.test(i)) ?? '';
  const mapped = steps.map((i) => {
    if (apt) {
      return i.replace(
        'useradd --create-home --uid 1000 --user-group',
        'useradd --create-home $(getent passwd 1000 >/dev/null || echo --uid 1000) --user-group',
      );
    }
    if (/apt-get install/.test(i))
      return facts.manager && facts.manager !== 'apt-get'
        ? `${installStep(facts.manager, aptPackages(i))}\n${STATIC_PIECES}`
        : STATIC_PIECES;
    if (/useradd /.test(i))
      return i.replace(
        /useradd --create-home --uid 1000 --user-group --shell \/bin\/bash agent/,
        ADD_AGENT_USER,
      );
    if (!facts.manager && /^RUN npm install -g/.test(i))
      return `RUN if command -v npm >/dev/null 2>&1; then ${i.slice(4)}; fi`;
    return i;
  });
  return { stage: apt ? '' : staticStage(baseImage(), certsStep), steps: mapped.join('\n') };
}

/**
 * sbx's layer as one Dockerfile FROM the project image: templates/base's steps for what the image
 * has (see baseSteps; the agent user gets UID 1000 only when the image has no user with it: sbx-init
 * gives it the workspace owner's UID anyway), the local features in order, then the agent
 * template's steps. An image without a package manager is labelled with what it lacks.
 */
export function layerDockerfile(
  projectRef: string,
  dc: Devcontainer,
  agentTemplate: string,
  imageUser = '',
  facts: ImageFacts = APT_IMAGE,
): string {
  const users = [...new Set([...dc.imageUsers, imageUser.split(':')[0] ?? '', '1000'])].filter(Boolean);
  const base = baseSteps(facts);
  const features = dc.features.map((f, i) => {
    const env = Object.entries({
      ...f.env,
      _REMOTE_USER: 'agent',
      _REMOTE_USER_HOME: '/home/agent',
      _CONTAINER_USER: 'root',
    })
      .map(([k, v]) => `${k}=${shq(v)}`)
      .join(' ');
    return [
      `# feature ${f.id}`,
      `COPY features/${i}/ /tmp/sbx-features/${i}/`,
      `RUN cd /tmp/sbx-features/${i} && chmod +x install.sh && env ${env} ./install.sh && rm -rf /tmp/sbx-features/${i}`,
      ...Object.entries(f.containerEnv ?? {}).map(([k, v]) => `ENV ${k}=${JSON.stringify(v)}`),
    ].join('\n');
  });
  const agent = agentSteps(agentTemplate);
  const missing = missingTools(facts);
  return [
    ...(base.stage ? [base.stage, ''] : []),
    `FROM ${projectRef}`,
    // By number: an image without /etc/passwd has no user named root.
    facts.manager === 'apt-get' ? 'USER root' : 'USER 0:0',
    base.steps,
    ...features,
    agent,
    'COPY sbx-devcontainer-path /usr/local/lib/sbx/devcontainer-path',
    `RUN sh /usr/local/lib/sbx/devcontainer-path ${users.map(shq).join(' ')}`,
    `LABEL dev.sbx.devcontainer=${JSON.stringify(dc.file.path)}`,
    ...(missing.length > 0 ? [`LABEL ${LABEL.missing}=${JSON.stringify(missing.join(','))}`] : []),
    '',
  ].join('\n');
}

/** The agent template's steps, without its FROM (none for the shell: the base alone). */
const agentSteps = (agentTemplate: string) =>
  agentTemplate === 'base'
    ? ''
    : withoutFrom(readFileSync(join(BUILTIN_DIR, agentTemplate, 'Dockerfile'), 'utf8'));

/**
 * Makes sure the dev container's image for an agent exists: found by its content-hash tag (no build),
 * else the project image is built (or found), then sbx's layer on top.
 */
export async function ensureDevcontainerImage(
  dc: Devcontainer,
  workspace: string,
  agent: { name: string; template: string },
  options: EnsureOptions,
): Promise<{ ref: string; info: ImageInfo; built: boolean; hash: string }> {
  const project = projectHash(dc, workspace);
  let projectId = '';
  if (!project.build) {
    const info = await ensurePulled(project.tag, options.reporter);
    projectId = info.Id;
  }
  const plan = planDevcontainer(dc, workspace, agent.template, options.caCerts, project, projectId);
  const existing = options.nocache ? undefined : await inspectImage(plan.tag);
  if (existing) return { ref: plan.tag, info: existing, built: false, hash: plan.hash };

  if (project.build && (options.nocache || !(await inspectImage(project.tag)))) {
    await buildProject(dc, project.tag, options, workspace);
  }
  // What the project image has decides how sbx adds itself, and which agents can run there.
  const facts = await probeImage(project.tag);
  const image = dc.source.kind === 'image' ? dc.source.ref : `built from ${dc.source.dockerfile}`;
  const why = refusal(agent.name, agentSteps(agent.template), facts);
  if (why)
    throw new SbxError(
      'buildFailed',
      `${agent.name === 'shell' ? 'The shell' : agent.name} cannot run on the dev container's image (${image}): ${why}. Nothing was created.`,
      {
        hint: `${agent.name === 'shell' ? 'Add those commands to the image' : 'Run `sbx run shell` there, add what is missing to the image (or base it on Debian, Ubuntu, Alpine or Fedora)'}, or run with --template NAME to use an sbx template instead.`,
      },
    );
  if (facts.manager !== 'apt-get') await ensurePulled(baseImage(), options.reporter);
  await buildLayer(dc, plan, agent.name, facts, options, workspace);
  const info = await inspectImage(plan.tag);
  if (!info)
    throw new SbxError('buildFailed', `The image ${plan.tag} was built but the engine cannot find it.`);
  return { ref: plan.tag, info, built: true, hash: plan.hash };
}

async function run(
  what: string,
  options: EnsureOptions,
  fail: (err: SbxError) => SbxError,
  build: () => Promise<unknown>,
) {
  options.reporter.start(what);
  try {
    await build();
  } catch (err) {
    options.reporter.end(false);
    if (err instanceof SbxError && err.kind === 'buildFailed') throw fail(err);
    throw err;
  }
  options.reporter.end(true);
}

/**
 * The project image, built from the workspace alone: the context (a real path inside the workspace)
 * is sent file by file, each opened without following symlinks and checked inside the workspace as
 * it is read, and the Dockerfile is the text read (and approved) before, not the file again.
 */
async function buildProject(
  dc: Devcontainer,
  tag: string,
  options: EnsureOptions,
  workspace: string,
): Promise<void> {
  if (dc.source.kind !== 'build') return;
  const { dockerfile, dockerfileText, context, args, target } = dc.source;
  const { default: tar } = await import('tar-fs');
  const fs = await import('node:fs');
  // tar-fs takes an `fs` (its types do not say so): its reads go through insideReadStream.
  const packOptions = {
    entries: contextFiles(context)
      .files.map((f) => f.path)
      .filter((p) => p !== OUTSIDE_DOCKERFILE),
    fs: { ...fs, createReadStream: insideReadStream(workspace) },
    finalize: false,
    finish: (p: { entry: (h: object, b: Buffer) => void; finalize: () => void }) => {
      p.entry({ name: OUTSIDE_DOCKERFILE, mode: 0o644 }, dockerfileText);
      p.finalize();
    },
  };
  const pack = tar.pack(context, packOptions as unknown as Parameters<typeof tar.pack>[1]);
  const net = await buildNetworkOf(options);
  await run(
    `dev container image (${dc.file.path})`,
    options,
    (err) =>
      new SbxError(
        'buildFailed',
        `Building the dev container's image from ${dockerfile} failed: ${err.message}`,
        {
          cause: err,
          hint: 'The output of the failing step is shown above. Fix the Dockerfile (or devcontainer.json), then run sbx again; nothing was created.',
        },
      ),
    () =>
      buildImage({
        context: pack as unknown as Readable,
        tags: [tag],
        labels: { ...options.labels, [LABEL.templateSource]: dc.file.path },
        buildargs: { ...net.buildargs, ...args },
        nocache: options.nocache,
        dockerfile: OUTSIDE_DOCKERFILE,
        ...(net.networkmode ? { networkmode: net.networkmode } : {}),
        ...(target ? { target } : {}),
        onEvent: (e) => options.reporter.event(e),
      }),
  );
}

async function buildLayer(
  dc: Devcontainer,
  plan: DevcontainerPlan,
  agentName: string,
  facts: ImageFacts,
  options: EnsureOptions,
  workspace: string,
): Promise<void> {
  const baseDir = join(BUILTIN_DIR, 'base');
  const agentDir = join(BUILTIN_DIR, plan.agentTemplate);
  const projectInfo = await inspectImage(plan.project.tag);
  const dockerfile = layerDockerfile(
    plan.project.tag,
    dc,
    plan.agentTemplate,
    projectInfo?.Config?.User ?? '',
    facts,
  );
  const { default: tar } = await import('tar-fs');
  const net = await buildNetworkOf(options);
  const pack = tar.pack(baseDir, {
    entries: contextFiles(baseDir)
      .files.map((f) => f.path)
      .filter((p) => p !== 'Dockerfile'),
    finalize: false,
    finish: (p) => {
      const add = (name: string, full: string, mode: number) =>
        p.entry({ name, mode: mode & 0o111 ? 0o755 : 0o644 }, readFileSync(full));
      if (plan.agentTemplate !== 'base')
        for (const f of contextFiles(agentDir).files)
          if (f.path !== 'Dockerfile') add(f.path, join(agentDir, f.path), f.mode);
      // A local feature is a folder of the workspace: each file read as one (no symlink, inside it).
      dc.features.forEach((feature, i) => {
        for (const f of contextFiles(feature.dir).files) {
          const bytes = feature.ref
            ? readFileSync(join(feature.dir, f.path))
            : readInside(workspace, join(feature.dir, f.path), `The feature ${feature.id}'s file`);
          if (bytes)
            p.entry({ name: `features/${i}/${f.path}`, mode: f.mode & 0o111 ? 0o755 : 0o644 }, bytes);
        }
      });
      for (const cert of options.caCerts) p.entry({ name: `certs/${cert.name}`, mode: 0o644 }, cert.pem);
      p.entry({ name: 'sbx-devcontainer-path', mode: 0o755 }, USER_TOOLS_SCRIPT);
      p.entry({ name: 'Dockerfile', mode: 0o644 }, dockerfile);
      p.finalize();
    },
  });
  await run(
    `sbx's layer for ${agentName} on the dev container (${plan.tag})`,
    options,
    (err) => {
      return new SbxError(
        'buildFailed',
        `Adding sbx's layer for ${agentName} on the dev container ${dc.file.path} failed: ${err.message}`,
        {
          cause: err,
          hint: 'The output of the failing step is shown above; a local feature whose install.sh failed is named in it. Fix it and run sbx again; nothing was created.',
        },
      );
    },
    () =>
      buildImage({
        context: pack as unknown as Readable,
        tags: [plan.tag],
        labels: {
          ...options.labels,
          [LABEL.templateHash]: plan.hash,
          [LABEL.templateSource]: dc.file.path,
        },
        buildargs: net.buildargs,
        nocache: options.nocache,
        ...(net.networkmode ? { networkmode: net.networkmode } : {}),
        onEvent: (e) => options.reporter.event(e),
      }),
  );
}
