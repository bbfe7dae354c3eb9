/** A running sandbox's egress policy, changed live, and the proxy's decisions for it. */
import type { LogEntry, SandboxPolicy } from '../network/policy.js';
import { followLog, proxyTrouble, readLog, readPolicy, writePolicy } from '../network/proxy.js';
import { checkPatterns } from '../network/settings.js';
import { SbxError } from '../shared/errors.js';
import type { SandboxRef } from './discovery.js';

/** The network of a sandbox that has a policy, or an error saying why it has none. */
function policyNetwork(sandbox: SandboxRef): string {
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
): Promise<SandboxPolicy> {
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

/** The proxy's decisions for a sandbox, oldest first (a line cut short by a crash is left out). */
export async function networkLog(sandbox: SandboxRef): Promise<LogEntry[]> {
  return (await readLog(policyNetwork(sandbox))).split('\n').flatMap((line) => {
    try {
      return line ? [JSON.parse(line) as LogEntry] : [];
    } catch {
      return [];
    }
  });
}

/** A warning when the shared proxy has been crashing or is down (see proxyTrouble). */
export const proxyWarning = () => proxyTrouble().catch(() => undefined);

/** Hands every decision for a sandbox, past and new, to onEntry until the process is interrupted. */
export async function followNetworkLog(
  sandbox: SandboxRef,
  onEntry: (entry: LogEntry) => void,
): Promise<void> {
  await followLog(policyNetwork(sandbox), (line) => onEntry(JSON.parse(line) as LogEntry));
}
