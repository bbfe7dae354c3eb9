import { Args } from '@oclif/core';
import type { SandboxRef } from '../sandbox/discovery.js';
import { SbxError } from '../shared/errors.js';
import { readPolicy, type SandboxPolicyFile, writePolicy } from './proxy.js';
import { checkPatterns } from './settings.js';

/** The network of a sandbox that has a policy, or an error saying why it has none. */
export function policyNetwork(sandbox: SandboxRef): string {
  if (sandbox.network && sandbox.network !== 'none') return sandbox.network;
  throw new SbxError(
    'conflict',
    sandbox.network === 'none'
      ? `${sandbox.name} has no network at all (--network none), so no policy.`
      : `${sandbox.name} was created before sbx had network policies; it is on Docker's default network.`,
    {
      hint: `Recreate it to get a policy: sbx rm -f ${sandbox.name} (workspace files stay), then sbx run again.`,
    },
  );
}

/**
 * Allows or blocks a host for a running sandbox, effective for its next request (the proxy re-reads
 * the policy): allowing takes the pattern off the deny list, blocking off the allow list.
 */
export async function changePolicy(
  sandbox: SandboxRef,
  action: 'allow' | 'block',
  pattern: string,
): Promise<SandboxPolicyFile> {
  const network = policyNetwork(sandbox);
  checkPatterns([pattern], action === 'allow' ? 'allow' : 'deny', 'pattern');
  const policy = await readPolicy(network);
  if (!policy)
    throw new SbxError('notFound', `The egress proxy has no policy for ${sandbox.name}.`, {
      hint: `Recreate the sandbox (sbx rm -f ${sandbox.name}; workspace files stay).`,
    });
  const p = pattern.toLowerCase();
  const add = (list: string[]) => (list.includes(p) ? list : [...list, p]);
  const updated =
    action === 'allow'
      ? { ...policy, allow: add(policy.allow), deny: policy.deny.filter((d) => d !== p) }
      : { ...policy, deny: add(policy.deny), allow: policy.allow.filter((a) => a !== p) };
  await writePolicy(updated);
  return updated;
}

export type PolicyView = Pick<SandboxPolicyFile, 'mode' | 'allow' | 'deny'>;

export const viewOf = (p: PolicyView): PolicyView => ({ mode: p.mode, allow: p.allow, deny: p.deny });

export const formatPolicy = (p: PolicyView) =>
  `${p.mode} policy; allow: ${p.allow.join(' ') || '-'}; deny: ${p.deny.join(' ') || '-'}`;

/** The arguments of `network allow` and `network block`. */
export const hostArgs = {
  sandbox: Args.string({
    description: 'The sandbox: name, id prefix, or workspace path (. for here).',
    required: true,
    ignoreStdin: true,
  }),
  pattern: Args.string({
    description: 'A host (api.example.com), *.example.com (its subdomains), either with :PORT.',
    required: true,
    ignoreStdin: true,
  }),
};
