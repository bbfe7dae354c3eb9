import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The seccomp profile of sandboxes with the inner guard (--inner-sandbox): the engine's default
 * profile plus only what unprivileged user, mount, network and PID namespaces need, so bubblewrap
 * (Claude Code's sandbox, Anthropic's `srt`) and rootless Podman can work inside the container.
 *
 * The default comes from profiles/seccomp/moby-default.json (moby's own, Apache-2.0; provenance in
 * profiles/seccomp/NOTICE), unmodified; the relaxation is derived from it here, in code, so what
 * differs is exactly:
 *  - clone: the default allows it only without any namespace flag (unless CAP_SYS_ADMIN); now
 *    CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET and CLONE_NEWPID are allowed too. CLONE_NEWUTS,
 *    CLONE_NEWIPC and CLONE_NEWCGROUP stay refused.
 *  - unshare: allowed with the same flags (the default allows it only with CAP_SYS_ADMIN).
 *  - mount, umount2, pivot_root: allowed. The kernel lets a process without CAP_SYS_ADMIN in the
 *    host's user namespace use them only in a mount namespace that its own user namespace owns.
 * clone3 keeps the default's ENOSYS: seccomp cannot read its flags (they are behind a pointer), so
 * allowing it would allow every namespace; C libraries fall back to clone, which is filtered.
 * PID namespaces are in the list because bubblewrap as Claude Code and srt run it always unshares
 * the PID namespace (--unshare-pid); a PID namespace made inside one's own user namespace gives no
 * power over the host.
 */

/** Namespace flags of clone(2)/unshare(2) (linux/sched.h). */
export const CLONE_FLAGS = {
  CLONE_NEWNS: 0x00020000,
  CLONE_NEWCGROUP: 0x02000000,
  CLONE_NEWUTS: 0x04000000,
  CLONE_NEWIPC: 0x08000000,
  CLONE_NEWUSER: 0x10000000,
  CLONE_NEWPID: 0x20000000,
  CLONE_NEWNET: 0x40000000,
} as const;

/**
 * unshare(2)'s time namespace flag. Not a clone(2) flag (there 0x80 is part of the exit signal), so
 * only unshare's rules refuse it.
 */
export const CLONE_NEWTIME = 0x00000080;

/** The namespaces the inner guard may create. */
export const NESTED_NAMESPACES =
  CLONE_FLAGS.CLONE_NEWUSER | CLONE_FLAGS.CLONE_NEWNS | CLONE_FLAGS.CLONE_NEWNET | CLONE_FLAGS.CLONE_NEWPID;

/** The syscalls allowed outright (the kernel confines them to one's own user namespace). */
export const NESTED_MOUNT_SYSCALLS = ['mount', 'umount2', 'pivot_root'] as const;

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface SeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args: SeccompArg[] | null;
  comment: string;
  includes: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes: { caps?: string[]; arches?: string[] };
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap: Array<{ architecture: string; subArchitectures: string[] }>;
  syscalls: SeccompRule[];
}

const DEFAULT_PATH = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../profiles/seccomp/moby-default.json',
);
let cachedDefault: string | undefined;

/** The engine's default profile (moby's), as text. */
export function defaultSeccompText(): string {
  cachedDefault ??= readFileSync(DEFAULT_PATH, 'utf8');
  return cachedDefault;
}

/** The engine's default profile (moby's), parsed; a fresh copy each call. */
export function defaultSeccomp(): SeccompProfile {
  return JSON.parse(defaultSeccompText()) as SeccompProfile;
}

const isUnprivilegedClone = (rule: SeccompRule): boolean =>
  rule.action === 'SCMP_ACT_ALLOW' &&
  rule.names.length === 1 &&
  rule.names[0] === 'clone' &&
  (rule.excludes.caps ?? []).includes('CAP_SYS_ADMIN') &&
  (rule.args ?? []).length === 1 &&
  rule.args?.[0]?.op === 'SCMP_CMP_MASKED_EQ';

/**
 * Derives the inner-guard profile from a default profile (pure): see the module comment for exactly
 * what differs. Throws when the default does not have the shape it relaxes (a clone rule masking
 * namespace flags), rather than returning a profile that would not do what it says.
 */
export function relaxForNestedNamespaces(base: SeccompProfile): SeccompProfile {
  const profile = structuredClone(base);
  let cloneRules = 0;
  for (const rule of profile.syscalls) {
    if (!isUnprivilegedClone(rule)) continue;
    const arg = rule.args![0]!;
    arg.value = arg.value & ~NESTED_NAMESPACES;
    cloneRules++;
  }
  if (cloneRules === 0)
    throw new Error('the default seccomp profile has no unprivileged clone rule to relax');
  const refused =
    (Object.values(CLONE_FLAGS).reduce((a, b) => a | b, 0) & ~NESTED_NAMESPACES) | CLONE_NEWTIME;
  const withoutSysAdmin = { caps: ['CAP_SYS_ADMIN'] };
  profile.syscalls.push(
    {
      names: ['unshare'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: refused, op: 'SCMP_CMP_MASKED_EQ' }],
      comment: 'sbx inner guard: unshare of user, mount, network and PID namespaces',
      includes: {},
      excludes: withoutSysAdmin,
    },
    {
      names: [...NESTED_MOUNT_SYSCALLS],
      action: 'SCMP_ACT_ALLOW',
      args: [],
      comment:
        'sbx inner guard: mounts, which the kernel confines to mount namespaces of its own user namespace',
      includes: {},
      excludes: withoutSysAdmin,
    },
  );
  return profile;
}

let cachedNested: string | undefined;

/**
 * The inner-guard profile (without privileged modes, see withoutPrivilegedModes) as the JSON text the engine takes in `SecurityOpt: ['seccomp=<json>']`
 * (Docker) or in a file (`--security-opt seccomp=FILE`, Podman, containers.conf).
 */
export function nestedNamespacesSeccomp(): string {
  // openat2 stays allowed here: bubblewrap >= 0.12, the inner guard's own sandbox, needs it and has
  // no fallback (see UNFILTERABLE). The cost: root inside an --inner-sandbox sandbox can create a
  // setuid file with openat2 (docs/security.md says so).
  cachedNested ??= JSON.stringify(
    withoutPrivilegedModes(relaxForNestedNamespaces(defaultSeccomp()), INNER_GUARD_KEEPS),
  );
  return cachedNested;
}

/**
 * A profile's text as a file in `dir` (named by its content, written once): Podman's API takes a
 * profile's path in `seccomp=`, not its text, so it must be a file on the engine's machine.
 */
export function seccompFile(dir: string, name: string, text: string): string {
  const file = join(dir, `${name}-${createHash('sha256').update(text).digest('hex').slice(0, 12)}.json`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, text, { mode: 0o644 });
  return file;
}

/** The inner-guard profile as a file in `dir` (see seccompFile). */
export const nestedNamespacesSeccompFile = (dir: string): string =>
  seccompFile(dir, 'inner-sandbox', nestedNamespacesSeccomp());

/** The mode bits that lend a file's owner or group to whoever runs it (S_ISUID | S_ISGID). */
export const PRIVILEGE_BITS = 0o6000;

/** Syscalls that set a file's mode, by the index of their mode argument. */
export const MODE_ARGUMENT: Record<string, number> = {
  chmod: 1,
  fchmod: 1,
  fchmodat: 2,
  fchmodat2: 2,
  creat: 1,
  mknod: 1,
  mknodat: 2,
};

/** Syscalls that create a file only with O_CREAT or O_TMPFILE: the index of their flags and mode arguments. */
export const CREATING_OPEN: Record<string, { flags: number; mode: number }> = {
  open: { flags: 1, mode: 2 },
  openat: { flags: 2, mode: 3 },
};

/**
 * The flags of open(2) that make it use its mode: O_CREAT as x86, arm and most architectures spell
 * it (0o100), and as mips/parisc (0o400) and sparc/alpha (0o1000) do, and __O_TMPFILE (0o20000000).
 * An open with any of these bits is allowed only with a mode free of PRIVILEGE_BITS; one with none
 * of them is allowed whatever its mode (unused). Taking the other architectures' bits too only
 * sends more opens to the mode check.
 */
export const CREATING_FLAGS = 0o100 | 0o400 | 0o1000 | 0o20000000;

/**
 * Syscalls refused with ENOSYS (so C libraries and runtimes fall back to the filtered ones):
 * openat2 (its mode is behind a pointer, which seccomp cannot read) and io_uring (its operations,
 * IORING_OP_OPENAT among them, never pass through seccomp).
 *
 * Known cost (measured 2026-12-07): bubblewrap 0.12 (Debian 13's 0.12.0-1~deb13u1, in sbx/base)
 * opens every bind source with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, O_PATH) and has no
 * fallback: under this filter `bwrap --dev-bind / / ...` stops with "Can't open source /: Function
 * not implemented", so bubblewrap >= 0.12 does not run under --inner-sandbox. No errno fixes that:
 * EPERM and EINVAL are reported as ENOSYS, ENOSYS/E2BIG/EXDEV/EOPNOTSUPP stop it too, and EAGAIN
 * makes it retry forever. Allowing openat2 is not sound either: its flags and mode sit behind a
 * pointer, and with openat2 allowed root inside leaves a written -rwsr-sr-x root file in a bind
 * mount (measured). A sound fix needs the mode checked outside seccomp's registers (a seccomp
 * user-notification supervisor that opens on the caller's behalf), not a different rule here. Until
 * then the inner guard's profile keeps openat2 (INNER_GUARD_KEEPS), with that cost, and every other
 * profile refuses it.
 */
export const UNFILTERABLE = ['openat2', 'io_uring_setup', 'io_uring_enter', 'io_uring_register'] as const;

/** What the inner guard's profile keeps of UNFILTERABLE: bubblewrap's openat2. */
export const INNER_GUARD_KEEPS = ['openat2'] as const;

const ENOSYS = 38;

/**
 * Derives, from any profile (pure), one under which no file gets a setuid or setgid bit: the mode
 * syscalls the profile allows are allowed only with a mode free of PRIVILEGE_BITS (SCMP_CMP_MASKED_EQ
 * on the mode argument), opens that create only with such a mode, and UNFILTERABLE is refused. With
 * CAP_MKNOD and CAP_SETFCAP dropped (security.ts) no device node or file capability can be made
 * either, so nothing the sandbox writes, to the workspace or a -v folder, lends a host user any ID.
 * The filter is inherited by everything the sandbox starts, nested namespaces and inner engines too.
 * What the profile refused stays refused (a syscall it did not allow is not added).
 */
export function withoutPrivilegedModes(
  base: SeccompProfile,
  /** Of UNFILTERABLE, what stays as the base profile has it (the inner guard's openat2, below). */
  kept: readonly string[] = [],
): SeccompProfile {
  const profile = structuredClone(base);
  const refused = UNFILTERABLE.filter((name) => !kept.includes(name));
  const filtered = new Set([...Object.keys(MODE_ARGUMENT), ...Object.keys(CREATING_OPEN), ...refused]);
  const allowed = new Set<string>();
  for (const rule of profile.syscalls) {
    if (rule.action !== 'SCMP_ACT_ALLOW') continue;
    for (const name of rule.names) if (filtered.has(name)) allowed.add(name);
    rule.names = rule.names.filter((name) => !filtered.has(name));
  }
  profile.syscalls = profile.syscalls.filter((rule) => rule.names.length > 0);
  const freeOfBits = (index: number): SeccompArg => ({
    index,
    value: PRIVILEGE_BITS,
    valueTwo: 0,
    op: 'SCMP_CMP_MASKED_EQ',
  });
  const rule = (names: string[], args: SeccompArg[], comment: string): SeccompRule => ({
    names,
    action: 'SCMP_ACT_ALLOW',
    args,
    comment,
    includes: {},
    excludes: {},
  });
  const byIndex = new Map<number, string[]>();
  for (const [name, index] of Object.entries(MODE_ARGUMENT))
    if (allowed.has(name)) byIndex.set(index, [...(byIndex.get(index) ?? []), name]);
  for (const [index, names] of byIndex)
    profile.syscalls.push(rule(names, [freeOfBits(index)], 'sbx: modes without setuid/setgid bits'));
  for (const [name, { flags, mode }] of Object.entries(CREATING_OPEN)) {
    if (!allowed.has(name)) continue;
    profile.syscalls.push(
      rule(
        [name],
        [{ index: flags, value: CREATING_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
        'sbx: opens that create nothing',
      ),
      rule([name], [freeOfBits(mode)], 'sbx: opens that create without setuid/setgid bits'),
    );
  }
  profile.syscalls.push({
    names: [...refused],
    action: 'SCMP_ACT_ERRNO',
    errnoRet: ENOSYS,
    args: [],
    comment: 'sbx: openat2 and io_uring, whose modes seccomp cannot see (ENOSYS: callers fall back)',
    includes: {},
    excludes: {},
  });
  return profile;
}

let cachedPlain: string | undefined;

/** The profile of every sandbox without the inner guard: the engine's default, without privileged modes. */
export function sandboxSeccomp(): string {
  cachedPlain ??= JSON.stringify(withoutPrivilegedModes(defaultSeccomp()));
  return cachedPlain;
}
