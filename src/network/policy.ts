/**
 * The egress policy: which hosts a sandbox may reach through the filtering proxy. Pure logic, shared
 * by sbx (checking what the user typed) and the proxy (deciding each request); it imports nothing
 * but node's net module (and types, which compile to nothing), because the proxy runs it alone inside
 * its container.
 */
import { isIP } from 'node:net';
import type { PolicyMode } from '../shared/parse.js';

export type { PolicyMode };

export interface Policy {
  /** allow: everything but internal addresses and the deny list; deny: only the allow list. */
  mode: PolicyMode;
  allow: string[];
  deny: string[];
  /** The engine host's own addresses, refused like private ones. */
  hostAddresses: string[];
  /** The proxy this sandbox's traffic goes on through (the host's, when sbx made it), and its NO_PROXY. */
  upstream?: { url: string; noProxy: string[] } | undefined;
  /** Secrets the proxy injects (their hosts are the only ones whose TLS it terminates). */
  secrets?: Injection[] | undefined;
  /** The certificate (for every secret's host, signed by sbx's CA) and key the proxy presents there. */
  tls?: { cert: string; key: string } | undefined;
  /** Extra CA certificates (PEM) the proxy trusts, besides the system's, when it verifies those hosts. */
  trust?: string[] | undefined;
  /**
   * `METHOD host/path` rules (`*` any method; in paths `*` is one segment's part, `**` anything): on
   * a host the proxy terminates, once a rule names it, only the requests a rule matches go through.
   */
  requestRules?: string[] | undefined;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', '*'];

/** A request rule's problem in words, or undefined when it is valid. */
export function requestRuleProblem(rule: string): string | undefined {
  const parts = rule.trim().split(/\s+/);
  if (parts.length !== 2) return 'write METHOD HOST/PATH, e.g. "GET api.github.com/repos/my-org/**"';
  const [method = '', target = ''] = parts;
  if (!METHODS.includes(method.toUpperCase())) return `${method} is not a method (${METHODS.join(', ')})`;
  const slash = target.indexOf('/');
  if (slash === -1) return 'add the path after the host: HOST/PATH (HOST/** for every path)';
  const host = target.slice(0, slash);
  return patternProblem(host, 'allow');
}

interface RequestRule {
  text: string;
  method: string;
  host: string;
  path: RegExp;
}

function parseRule(text: string): RequestRule {
  const [method = '*', target = ''] = text.trim().split(/\s+/);
  const slash = target.indexOf('/');
  const glob = target.slice(slash);
  const pattern = glob
    .split(/(\*\*|\*)/)
    .map((part) =>
      part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return {
    text,
    method: method.toUpperCase(),
    host: target.slice(0, slash),
    path: new RegExp(`^${pattern}$`),
  };
}

/** The host part of each rule (to tell which name hosts sbx does not terminate). */
export const requestRuleHost = (rule: string) => parseRule(rule).host;

/**
 * The decision on one request inside a terminated host: allowed when no rule names the host, or when
 * one matches its method and path (query left out).
 */
export function decideRequest(policy: Policy, host: string, method: string, path: string): Decision {
  const rules = (policy.requestRules ?? []).map(parseRule).filter((r) => matches(r.host, host, 0));
  if (rules.length === 0) return { allowed: true, rule: 'no request rule for this host' };
  const bare = path.split('?')[0] ?? '/';
  const match = rules.find(
    (r) => (r.method === '*' || r.method === method.toUpperCase()) && r.path.test(bare),
  );
  return match
    ? { allowed: true, rule: `allow-request ${match.text}` }
    : {
        allowed: false,
        rule: `no request rule allows it (rules for ${host}: ${rules.map((r) => r.text).join('; ')})`,
      };
}

/** One secret as the proxy applies it: on requests to its hosts, the placeholder becomes the value. */
export interface Injection {
  name: string;
  hosts: string[];
  /** Lower case. */
  header: string;
  /** `{}` stands for the value: used when the request has no such header. */
  format: string;
  placeholder: string;
  value: string;
  /** A query parameter that may carry it too (Google's `key`): the placeholder there becomes the value. */
  query?: string | undefined;
  /** Never set the header on a request without it (only the placeholder is replaced). */
  replaceOnly?: boolean | undefined;
}

/** A request target with each secret's placeholder in its query parameter replaced by the value. */
export function injectQuery(target: string, injections: Injection[]): { target: string; injected: string[] } {
  const at = target.indexOf('?');
  if (at === -1) return { target, injected: [] };
  const injected: string[] = [];
  const params = target
    .slice(at + 1)
    .split('&')
    .map((pair) => {
      const [name = '', value = ''] = pair.split('=');
      const s = injections.find((i) => i.query === name && decodeURIComponent(value) === i.placeholder);
      if (!s) return pair;
      injected.push(s.name);
      return `${name}=${encodeURIComponent(s.value)}`;
    });
  return { target: `${target.slice(0, at)}?${params.join('&')}`, injected };
}

/** The secrets bound to a host (the proxy terminates TLS for it when there is any). */
export function injectionsFor(policy: Policy, host: string): Injection[] {
  return (policy.secrets ?? []).filter((s) => s.hosts.some((h) => matches(h.split(':')[0]!, host, 0)));
}

/**
 * One header value with a secret's placeholder replaced by its value: as it is, or inside the
 * base64 of `Basic user:password` (what git sends with the password its credential helper gave).
 */
function swapIn(value: string, s: Injection): string {
  if (value.includes(s.placeholder)) return value.split(s.placeholder).join(s.value);
  const basic = /^(basic\s+)([A-Za-z0-9+/=]+)\s*$/i.exec(value);
  if (!basic) return value;
  const decoded = Buffer.from(basic[2]!, 'base64').toString('utf8');
  if (!decoded.includes(s.placeholder)) return value;
  return `${basic[1]}${Buffer.from(decoded.split(s.placeholder).join(s.value), 'utf8').toString('base64')}`;
}

/**
 * A request's headers with the secrets put in: in the configured header, the placeholder becomes
 * the value; a request without that header gets it, in the secret's format. A header holding
 * something else (the agent's own credential) is left alone. Returns the names of what was injected.
 */
export function injectHeaders(
  headers: Record<string, string | string[] | undefined>,
  injections: Injection[],
): { headers: Record<string, string | string[] | undefined>; injected: string[] } {
  const out = { ...headers };
  const injected: string[] = [];
  for (const s of injections) {
    const current = out[s.header];
    if (current === undefined) {
      if (s.replaceOnly) continue;
      out[s.header] = s.format.replace('{}', s.value);
      injected.push(s.name);
      continue;
    }
    const values = Array.isArray(current) ? current : [current];
    const swapped = values.map((v) => swapIn(v, s));
    if (swapped.every((v, i) => v === values[i])) continue;
    out[s.header] = Array.isArray(current) ? swapped : swapped[0];
    injected.push(s.name);
  }
  return { headers: out, injected };
}

/** A sandbox's policy as sbx writes it to the proxy's state and the proxy reads it: one file per network. */
export interface SandboxPolicy extends Policy {
  sandbox: string;
  network: string;
  subnet: string;
}

/** What a user sees of a policy (sbx inspect, network allow/block). */
export type PolicyView = Pick<Policy, 'mode' | 'allow' | 'deny'>;

export const viewOf = (p: PolicyView): PolicyView => ({ mode: p.mode, allow: p.allow, deny: p.deny });

/** One decision of the proxy, as it logs it (a JSON line per request) and `sbx network log` shows it. */
export interface LogEntry {
  time: string;
  method: string;
  host: string;
  port: number;
  allowed: boolean;
  rule: string;
  /** Requests inside TLS the proxy terminated (hosts with a secret): their path, and what it injected. */
  path?: string;
  terminated?: boolean;
  injected?: string[];
}

/** Whether NO_PROXY sends a host around the upstream proxy: `*`, exact names, `.suffix` or `suffix` domains. */
export function bypassesUpstream(noProxy: readonly string[], host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return noProxy.some((raw) => {
    const entry = raw.toLowerCase().replace(/:\d+$/, '');
    if (entry === '*') return true;
    const domain = entry.replace(/^\*?\./, '');
    return name === domain || name.endsWith(`.${domain}`);
  });
}

export interface Decision {
  allowed: boolean;
  /** The rule that decided, as the user wrote it, e.g. `deny *.example.com` or `default deny`. */
  rule: string;
}

/** A pattern problem, in words for the user; undefined when the pattern is valid. */
export function patternProblem(pattern: string, list: 'allow' | 'deny'): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pattern)) return 'give a host name, not a URL (no scheme)';
  if (pattern.includes('/')) return 'give a host name, without a path';
  const [host = '', port, ...rest] = pattern.split(':');
  if (rest.length > 0) return 'use HOST or HOST:PORT';
  if (port !== undefined && !(/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535))
    return 'the port is a number from 1 to 65535';
  if (host === '*')
    return list === 'allow' ? 'a bare * would allow everything: use --network-policy allow' : undefined;
  const name = host.startsWith('*.') ? host.slice(2) : host;
  if (isIP(name)) return host === name ? undefined : 'a wildcard applies to names, not addresses';
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(name))
    return 'a host is letters, digits, dots and dashes, optionally starting with *.';
  if (host.startsWith('*.') && !name.includes('.')) return `*.${name} would match a whole top-level domain`;
  return undefined;
}

/** Does a pattern (`host`, `*.domain`, either with `:port`) match this host and port? */
export function matches(pattern: string, host: string, port: number): boolean {
  const [name = '', patternPort] = pattern.toLowerCase().split(':');
  if (patternPort !== undefined && Number(patternPort) !== port) return false;
  const h = host.toLowerCase().replace(/\.$/, '');
  if (name === '*') return true;
  if (name.startsWith('*.')) return h.endsWith(name.slice(1)) && h.length > name.length - 1;
  return h === name;
}

/** The decision on a host name, before it is resolved: deny beats allow. */
export function decideHost(policy: Policy, host: string, port: number): Decision & { explicit: boolean } {
  const denied = policy.deny.find((p) => matches(p, host, port));
  if (denied) return { allowed: false, rule: `deny ${denied}`, explicit: true };
  const allowed = policy.allow.find((p) => matches(p, host, port));
  if (allowed) return { allowed: true, rule: `allow ${allowed}`, explicit: true };
  return policy.mode === 'deny'
    ? { allowed: false, rule: 'default deny (not in the allow list)', explicit: false }
    : { allowed: true, rule: 'default allow', explicit: false };
}

/**
 * The decision on an address the host resolved to (or was given as): private, loopback, link-local,
 * cloud-metadata and the host's own addresses are refused unless the host was allowed by name.
 */
export function decideAddress(policy: Policy, address: string, allowedByName: boolean): Decision {
  if (allowedByName) return { allowed: true, rule: 'allowed by name' };
  if (policy.hostAddresses.includes(address)) return { allowed: false, rule: 'the host itself' };
  const kind = internalKind(address);
  return kind ? { allowed: false, rule: `${kind} address` } : { allowed: true, rule: 'public address' };
}

/** What kind of internal address this is, or undefined for a public one. */
export function internalKind(address: string): string | undefined {
  const v4 = isIP(address) === 4 ? address : /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (v4) {
    const [a = 0, b = 0] = v4.split('.').map(Number);
    if (a === 169 && b === 254) return v4 === '169.254.169.254' ? 'cloud metadata' : 'link-local';
    if (a === 127) return 'loopback';
    if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private';
    if (a === 100 && b >= 64 && b <= 127) return 'shared (CGNAT)';
    if (a === 0 || a >= 224) return 'reserved';
    return undefined;
  }
  const v6 = address.toLowerCase();
  if (v6 === '::1' || v6 === '::') return 'loopback';
  if (/^fe[89ab]/.test(v6)) return 'link-local';
  if (/^f[cd]/.test(v6)) return v6.startsWith('fd00:ec2::254') ? 'cloud metadata' : 'private';
  return undefined;
}

/** Is an IPv4 address inside a CIDR subnet (e.g. 172.18.0.0/16)? */
export function inSubnet(address: string, subnet: string): boolean {
  const [base = '', bits = '32'] = subnet.split('/');
  if (isIP(address) !== 4 || isIP(base) !== 4) return false;
  const toInt = (ip: string) => ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return (toInt(address) & mask) === (toInt(base) & mask);
}
