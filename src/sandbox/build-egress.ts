/**
 * The network a dev container's build runs on. Its Dockerfile, features and project image come from
 * the workspace, so its RUN steps are treated like the sandbox itself: on an internal network of
 * their own whose only way out is the egress proxy, under the policy the sandbox will have (the proxy
 * refuses the host's addresses and private ones there too), with HTTP(S)_PROXY pointing at the
 * proxy by address; with --network none, no network at all.
 */
import { detachSandbox, sandboxEgress } from '../network/proxy.js';
import { workspaceSettings } from '../network/settings.js';
import type { PolicyMode } from '../shared/parse.js';
import { type SecurityRequest, sandboxPolicy } from './security.js';

export interface BuildEgress {
  /** The engine's networkmode for the build: the network's name, or none. */
  network: string;
  /** HTTP_PROXY and the rest, for the build's RUN steps. */
  buildargs: Record<string, string>;
  /** Removes the build's network and its policy (also after a failed build). */
  done: () => Promise<void>;
}

export async function buildEgress(options: {
  name: string;
  workspace: string;
  agentHosts: string[];
  request: SecurityRequest;
  configMode: PolicyMode | undefined;
  labels: Record<string, string>;
}): Promise<BuildEgress> {
  const { request } = options;
  if (request.network === 'none') return { network: 'none', buildargs: {}, done: async () => {} };
  const policy = await sandboxPolicy(
    request,
    options.configMode,
    options.agentHosts,
    workspaceSettings(options.workspace),
  );
  const egress = await sandboxEgress(`${options.name}.sbx-build`, policy, undefined, options.labels);
  const done = () => detachSandbox(egress.network).catch(() => {});
  try {
    await egress.ready;
  } catch (err) {
    await done();
    throw err;
  }
  // A build step has no /etc/hosts entry for the proxy's name: its address instead.
  const [proxyName, proxyAddress] = (egress.extraHosts[0] ?? '').split(':');
  const buildargs = Object.fromEntries(
    egress.env.map((e) => {
      const eq = e.indexOf('=');
      const value = e.slice(eq + 1);
      return [
        e.slice(0, eq),
        proxyName && proxyAddress ? value.split(`//${proxyName}:`).join(`//${proxyAddress}:`) : value,
      ];
    }),
  );
  return { network: egress.network, buildargs, done };
}
