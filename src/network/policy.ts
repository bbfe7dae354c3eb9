/**
 * The egress policy: which hosts a sandbox may reach through the filtering proxy. Pure logic, shared
 * by sbx (checking what the user typed) and the proxy (deciding each request); it imports nothing
 * but node's net module and ipaddr.js (and types, which compile to nothing), because the proxy runs
 * it alone inside its container (where sbx copies ipaddr.js beside it).
 *
 * Everything a sandbox sends is hostile: a host is made canonical (an address in any spelling
 * becomes one form, a name is lower-cased without its final dot) before any rule sees it, and the
 * address decided on is the one the proxy connects to.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
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
  /** What one sandbox may take of the shared proxy (DEFAULT_LIMITS for what is not set). */
  limits?: Partial<ProxyLimits> | undefined;
}

export interface ProxyLimits {
  /** Connections open at once through the proxy; more are refused with 429. */
  connections: number;
  /** The log's size before it is rotated (one older file is kept). */
  logBytes: number;
}

export const DEFAULT_LIMITS: ProxyLimits = { connections: 1024, logBytes: 8 * 2 ** 20 };

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

/** Rules compiled once: a terminated host's every request is matched against them. */
const compiled = new Map<string, RequestRule>();
function parseRule(text: string): RequestRule {
  let rule = compiled.get(text);
  if (!rule) {
    rule = compileRule(text);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(text, rule);
  }
  return rule;
}

function compileRule(text: string): RequestRule {
  const [method = '*', target = ''] = text.trim().split(/\s+/);
  const slash = target.indexOf('/');
  const glob = target.slice(slash).replace(/%2e/gi, '.').replace(/%2f/gi, '/');
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
 * A request path as the upstream may read it, for matching request rules: each segment fully
 * percent-decoded (an encoded slash is a separator), repeated slashes made one. A path an upstream
 * could read in more than one way is refused instead (`ambiguous`): a dot segment in any encoding
 * (`..`, `%2e%2e`, full-width dots), a path parameter (`;`, which some servers drop), a backslash,
 * a double encoding (`%25`), a control character, a bad escape or bad UTF-8, a fragment, a path not
 * starting with `/`. `forward` is what to send: the raw path with repeated slashes made one (its
 * query kept as it is).
 */
export function requestPath(target: string): { path: string; forward: string } | { ambiguous: string } {
  const at = target.indexOf('?');
  const raw = at === -1 ? target : target.slice(0, at);
  const query = at === -1 ? '' : target.slice(at);
  if (!raw.startsWith('/')) return { ambiguous: 'the path does not start with /' };
  if (/[#;\\]|%(23|3b|5c)/i.test(raw))
    return { ambiguous: 'the path holds a fragment, a ; parameter or a backslash' };
  if (/%(?![0-9a-f]{2})/i.test(raw)) return { ambiguous: 'the path holds a bad %-escape' };
  if (/%25/i.test(raw)) return { ambiguous: 'the path is encoded twice (%25)' };
  if (
    /%([01][0-9a-f]|7f)/i.test(raw) ||
    [...raw].some((c) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127)
  )
    return { ambiguous: 'the path holds a control character' };
  const segments: string[] = [];
  for (const segment of raw.replace(/%2f/gi, '/').split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment).normalize('NFKC');
    } catch {
      return { ambiguous: 'the path is not valid UTF-8 once decoded' };
    }
    if (decoded === '.' || decoded === '..')
      return { ambiguous: 'the path holds a dot segment (. or ..), plain or encoded' };
    if (/[/\\;]/.test(decoded)) return { ambiguous: 'a segment decodes to a separator' };
    segments.push(decoded);
  }
  return {
    path: segments.join('/').replace(/\/{2,}/g, '/'),
    forward: `${raw.replace(/\/{2,}/g, '/')}${query}`,
  };
}

/**
 * The decision on one request inside a terminated host: allowed when no rule names the host, or when
 * one matches its method and its path as the upstream may read it (see requestPath; query left out).
 * An ambiguous path on a host with rules is refused.
 */
export function decideRequest(policy: Policy, host: string, method: string, target: string): Decision {
  const rules = (policy.requestRules ?? []).map(parseRule).filter((r) => matches(r.host, host, 0));
  if (rules.length === 0) return { allowed: true, rule: 'no request rule for this host' };
  const path = requestPath(target);
  if ('ambiguous' in path)
    return {
      allowed: false,
      rule: `an ambiguous path is refused where request rules apply: ${path.ambiguous}`,
    };
  const match = rules.find(
    (r) => (r.method === '*' || r.method === method.toUpperCase()) && r.path.test(path.path),
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

/** Whether a secret's host (`name`, `*.domain`, either with `:PORT`; 443 when none) covers host:port. */
export const boundTo = (bound: string, host: string, port: number) =>
  matches(bound.includes(':') ? bound : `${bound}:443`, host, port);

/** The secrets bound to a host and port (the proxy terminates TLS for it when there is any). */
export function injectionsFor(policy: Policy, host: string, port: number): Injection[] {
  return (policy.secrets ?? []).filter((s) => s.hosts.some((h) => boundTo(h, host, port)));
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
  /** How many more identical refusals followed this one (a flood, summarised). */
  repeated?: number;
  /** A line about the log itself (its rotation), not a decision. */
  note?: boolean;
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

/** A host as a sandbox named it, in its one canonical form; or why it is none. */
export type CanonicalHost =
  | { kind: 'address'; host: string }
  | { kind: 'name'; host: string }
  | { kind: 'invalid'; reason: string };

/**
 * The one form of a host. An address in any spelling (IPv4 in decimal, octal, hex or short forms, as
 * the system resolver reads them; IPv6 in any form, with or without brackets) becomes its canonical
 * text, and an IPv6 address that stands for an IPv4 one (IPv4-mapped, -translated, -compatible,
 * NAT64's well-known prefix) becomes that IPv4 address. A name is lower-cased, without its final
 * dot. Anything else (a zone, a name ending in a number that is no address, bad characters, over
 * 253 characters) is invalid.
 */
export function canonicalHost(text: string): CanonicalHost {
  let host = text.trim().toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.includes(':') || host.includes('%')) {
    if (host.includes('%')) return { kind: 'invalid', reason: 'an address with a zone is not taken' };
    if (!ipaddr.IPv6.isValid(host)) return { kind: 'invalid', reason: 'not an IPv6 address' };
    return { kind: 'address', host: canonicalAddress(host) };
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  const labels = host.split('.');
  // Only a host whose last label is a number (decimal, octal or hex) can be an IPv4 address, as
  // the system resolver reads it; one that is no address is no name either.
  if (/^(\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1]!)) {
    if (ipaddr.IPv4.isValid(host)) return { kind: 'address', host: ipaddr.IPv4.parse(host).toString() };
    return { kind: 'invalid', reason: 'a name ending in a number must be an IPv4 address' };
  }
  if (host.length === 0 || host.length > 253) return { kind: 'invalid', reason: 'not a host name' };
  if (labels.some((l) => !/^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l)))
    return { kind: 'invalid', reason: 'a host name is letters, digits, dashes and dots' };
  return { kind: 'name', host };
}

/** The IPv4 address an IPv6 one stands for (mapped, translated, compatible, NAT64 /96), if any. */
function embeddedV4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const bytes = address.toByteArray();
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  const tail = () => new ipaddr.IPv4(bytes.slice(12, 16));
  const range = address.range();
  if (range === 'ipv4Mapped' || range === 'rfc6145' || range === 'rfc6052') return tail();
  // IPv4-compatible (::a.b.c.d, deprecated), but not :: or ::1.
  if (zeros(0, 12) && !zeros(12, 15)) return tail();
  return undefined;
}

/** An address literal (already known valid) in its canonical text (see canonicalHost). */
export function canonicalAddress(text: string): string {
  const parsed = ipaddr.parse(text.replace(/^\[|\]$/g, ''));
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const v4 = embeddedV4(parsed as ipaddr.IPv6);
  return v4 ? v4.toString() : parsed.toString();
}

/** A pattern's host part as a host is compared with it: an address in its canonical form (kept). */
const patternHosts = new Map<string, string>();
function patternHost(name: string): string {
  if (name === '*' || name.startsWith('*.')) return name;
  let found = patternHosts.get(name);
  if (found === undefined) {
    const canonical = canonicalHost(name);
    found = canonical.kind === 'invalid' ? name : canonical.host;
    if (patternHosts.size > 10_000) patternHosts.clear();
    patternHosts.set(name, found);
  }
  return found;
}

/** Does a pattern (`host`, `*.domain`, either with `:port`) match this (canonical) host and port? */
export function matches(pattern: string, host: string, port: number): boolean {
  const [raw = '', patternPort] = pattern.toLowerCase().split(':');
  if (patternPort !== undefined && Number(patternPort) !== port) return false;
  const name = patternHost(raw);
  const h = host.toLowerCase().replace(/\.$/, '');
  if (name === '*') return true;
  if (name.startsWith('*.')) return h.endsWith(name.slice(1)) && h.length > name.length - 1;
  return h === name;
}

/** The decision on a (canonical) host name or address, before it is resolved: deny beats allow. */
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
 * The decision on an address a host resolved to (or was given as), in canonical form: private,
 * loopback, link-local, cloud-metadata, reserved and the host's own addresses are refused unless
 * the host was allowed by a rule naming it; that opening is said in the rule.
 */
export function decideAddress(policy: Policy, address: string, allowedByName: boolean): Decision {
  const kind = canonicalList(policy.hostAddresses).includes(address)
    ? 'the host itself'
    : internalKind(address);
  if (!kind) return { allowed: true, rule: 'public address' };
  return allowedByName
    ? { allowed: true, rule: `allowed by name, which opens ${address} (${kind})` }
    : { allowed: false, rule: kind === 'the host itself' ? kind : `${kind} address` };
}

/** A list of addresses in canonical form, made once per list (a policy's host addresses). */
const canonicalLists = new WeakMap<readonly string[], string[]>();
function canonicalList(list: readonly string[]): string[] {
  let found = canonicalLists.get(list);
  if (!found) {
    found = list.flatMap((a) => (isIP(a) ? [canonicalAddress(a)] : []));
    canonicalLists.set(list, found);
  }
  return found;
}

/**
 * What kind of internal address this is (any spelling), or undefined for a public one: private,
 * loopback, link-local, CGNAT, unspecified, multicast and never-routed ranges; for IPv6, everything
 * outside global unicast (2000::/3), and the tunnelling ranges that embed an IPv4 address (6to4,
 * Teredo) too.
 */
export function internalKind(text: string): string | undefined {
  if (!ipaddr.isValid(text.replace(/^\[|\]$/g, ''))) return 'not an address';
  const address = ipaddr.parse(canonicalAddress(text));
  if (address.kind() === 'ipv4') {
    const v4 = address.toString();
    switch (address.range()) {
      case 'linkLocal':
        return v4 === '169.254.169.254' ? 'cloud metadata' : 'link-local';
      case 'loopback':
        return 'loopback';
      case 'private':
        return 'private';
      case 'carrierGradeNat':
        return 'shared (CGNAT)';
      case 'unspecified':
      case 'broadcast':
      case 'multicast':
        return 'reserved';
      default: {
        // Documentation and benchmarking ranges reach whatever the network routes them to, as a
        // public address does (a company's intercepting proxy, a fake-IP resolver); 240/4 and
        // 192.0.0/24 (protocol assignments) are never a host on the internet.
        const [a, b, c] = (address as ipaddr.IPv4).octets;
        return a! >= 240 || (a === 192 && b === 0 && c === 0) ? 'reserved' : undefined;
      }
    }
  }
  const v6 = address as ipaddr.IPv6;
  switch (v6.range()) {
    case 'loopback':
    case 'unspecified':
      return 'loopback';
    case 'linkLocal':
      return 'link-local';
    case 'uniqueLocal':
      return v6.toString() === 'fd00:ec2::254' ? 'cloud metadata' : 'private';
    case 'unicast':
      // Global unicast is 2000::/3; the rest is unassigned.
      return (v6.parts[0]! & 0xe000) === 0x2000 ? undefined : 'reserved';
    default:
      // 6to4, Teredo, NAT64's local-use prefix, documentation, multicast, site-local...
      return 'reserved';
  }
}

/** Parsed subnets, kept: the proxy asks about the same few hundred on every connection. */
const cidrs = new Map<string, [ipaddr.IPv4 | ipaddr.IPv6, number] | null>();
function parsedCidr(subnet: string): [ipaddr.IPv4 | ipaddr.IPv6, number] | null {
  let found = cidrs.get(subnet);
  if (found === undefined) {
    try {
      found = ipaddr.parseCIDR(subnet);
    } catch {
      found = null;
    }
    if (cidrs.size > 10_000) cidrs.clear();
    cidrs.set(subnet, found);
  }
  return found;
}

/** An address (any spelling) parsed in its canonical form, or undefined. */
function parsedAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  try {
    const parsed = ipaddr.parse(address.replace(/^\[|\]$/g, ''));
    if (parsed.kind() === 'ipv4') return parsed;
    return embeddedV4(parsed as ipaddr.IPv6) ?? parsed;
  } catch {
    return undefined;
  }
}

/** Is an address (any spelling) inside a CIDR subnet (IPv4 or IPv6)? */
export const inSubnet = (address: string, subnet: string): boolean => subnetTest(address)(subnet);

/** A test of whether one address (parsed once) lies inside a subnet, for asking of many subnets. */
export function subnetTest(address: string): (subnet: string) => boolean {
  const a = parsedAddress(address);
  return a === undefined ? () => false : (subnet) => inParsedSubnet(a, subnet);
}

function inParsedSubnet(a: ipaddr.IPv4 | ipaddr.IPv6, subnet: string): boolean {
  const cidr = parsedCidr(subnet);
  return cidr !== null && a.kind() === cidr[0].kind() && a.match(cidr);
}

/**
 * Addresses the proxy never connects to, whatever a policy says: its own (every address of its
 * interfaces, loopback and unspecified included; canonical, as `address` is) and every sandbox
 * network's. Returns why, or
 * undefined. A sandbox reaching the proxy through another network would speak as that network's
 * sandbox; one reaching another sandbox would pass its wall.
 */
export function neverReached(
  address: string,
  own: readonly string[],
  subnets: readonly string[],
): string | undefined {
  const kind = internalKind(address);
  if (kind === 'loopback') return 'loopback address (the proxy itself)';
  if (own.includes(address)) return 'the proxy itself';
  if (subnets.some(subnetTest(address))) return 'a sandbox network';
  return undefined;
}
