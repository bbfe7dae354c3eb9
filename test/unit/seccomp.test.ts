import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { dockerSeccomp } from '../../src/sandbox/docker-inside.js';
import {
  CLONE_FLAGS,
  CLONE_NEWTIME,
  defaultSeccomp,
  defaultSeccompText,
  INNER_GUARD_KEEPS,
  nestedNamespacesSeccomp,
  PRIVILEGE_BITS,
  relaxForNestedNamespaces,
  type SeccompProfile,
  sandboxSeccomp,
  UNFILTERABLE,
  withoutPrivilegedModes,
} from '../../src/sandbox/seccomp.js';

const {
  CLONE_NEWCGROUP,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
} = CLONE_FLAGS;

/** What seccomp does with clone(flags) / unshare(flags) for a process without CAP_SYS_ADMIN on x86_64. */
function allows(profile: SeccompProfile, syscall: string, flags = 0): boolean {
  for (const rule of profile.syscalls) {
    if (!rule.names.includes(syscall) || rule.action !== 'SCMP_ACT_ALLOW') continue;
    if (rule.includes.caps?.length || rule.includes.arches?.length) continue;
    if (
      (rule.args ?? []).every((a) => a.op === 'SCMP_CMP_MASKED_EQ' && (flags & a.value) === (a.valueTwo ?? 0))
    )
      return true;
  }
  return false;
}

describe('the inner-guard seccomp profile', () => {
  it('starts from moby 20.10.24 default profile, unmodified (the sha256 in profiles/seccomp/NOTICE)', () => {
    const sha = createHash('sha256').update(defaultSeccompText()).digest('hex');
    assert.equal(sha, 'e5e91f884647e7332b3f89280777752f563df4f1372a186f14ddb7bf2f55cf61');
  });

  it('differs from the default in exactly the clone masks and two added rules', () => {
    const base = defaultSeccomp();
    const relaxed = relaxForNestedNamespaces(defaultSeccomp());
    assert.equal(relaxed.defaultAction, base.defaultAction);
    assert.deepEqual(relaxed.archMap, base.archMap);
    assert.equal(relaxed.syscalls.length, base.syscalls.length + 2);
    const changed = base.syscalls.flatMap((rule, i) =>
      JSON.stringify(rule) === JSON.stringify(relaxed.syscalls[i])
        ? []
        : [{ before: rule, after: relaxed.syscalls[i]! }],
    );
    // The two unprivileged clone rules (the s390 one reads the flags from its second argument).
    assert.equal(changed.length, 2);
    for (const { before, after } of changed) {
      assert.deepEqual(after.names, ['clone']);
      assert.equal(before.args![0]!.value, 0x7e020000);
      assert.equal(after.args![0]!.value, CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC);
      assert.deepEqual({ ...after, args: null }, { ...before, args: null });
    }
    const added = relaxed.syscalls.slice(base.syscalls.length);
    assert.deepEqual(
      added.map((r) => [r.names, r.action, r.args, r.excludes]),
      [
        [
          ['unshare'],
          'SCMP_ACT_ALLOW',
          [
            {
              index: 0,
              value: CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWTIME,
              op: 'SCMP_CMP_MASKED_EQ',
            },
          ],
          { caps: ['CAP_SYS_ADMIN'] },
        ],
        [['mount', 'umount2', 'pivot_root'], 'SCMP_ACT_ALLOW', [], { caps: ['CAP_SYS_ADMIN'] }],
      ],
    );
  });

  it('lets clone and unshare make user, mount, network and PID namespaces, and no others', () => {
    const base = defaultSeccomp();
    const relaxed = relaxForNestedNamespaces(base);
    const wanted = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID;
    for (const call of ['clone', 'unshare']) {
      assert.equal(allows(base, call, CLONE_NEWUSER), false, `default ${call} NEWUSER`);
      assert.equal(allows(relaxed, call, wanted), true, `${call} user|mount|net|pid`);
      for (const flag of [CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP])
        assert.equal(allows(relaxed, call, wanted | flag), false, `${call} with 0x${flag.toString(16)}`);
    }
    // unshare's time namespace (0x80 is part of clone's exit signal, so only unshare refuses it).
    assert.equal(allows(relaxed, 'unshare', wanted | CLONE_NEWTIME), false);
    assert.equal(allows(base, 'clone', 0), true);
    assert.equal(allows(relaxed, 'clone', 0), true);
    for (const call of ['mount', 'umount2', 'pivot_root']) {
      assert.equal(allows(base, call), false);
      assert.equal(allows(relaxed, call), true);
    }
    // clone3 keeps ENOSYS (its flags are out of seccomp's reach); setns, bpf and the new mount API stay refused.
    for (const call of ['clone3', 'setns', 'bpf', 'fsopen', 'move_mount', 'open_tree', 'keyctl'])
      assert.equal(allows(relaxed, call), allows(base, call), call);
    assert.equal(allows(relaxed, 'clone3'), false);
  });

  it('does not change the profile it is given, and refuses a profile without the clone rule it relaxes', () => {
    const base = defaultSeccomp();
    const copy = JSON.stringify(base);
    relaxForNestedNamespaces(base);
    assert.equal(JSON.stringify(base), copy);
    assert.throws(() => relaxForNestedNamespaces({ ...base, syscalls: [] }), /no unprivileged clone rule/);
  });
});

/** What seccomp decides for a syscall with these arguments (no capabilities, x86_64): allow, or the errno. */
function decide(profile: SeccompProfile, syscall: string, args: number[]): 'allow' | number {
  for (const rule of profile.syscalls) {
    if (!rule.names.includes(syscall)) continue;
    if (rule.includes.caps?.length || rule.includes.arches?.length || rule.includes.minKernel) continue;
    const match = (rule.args ?? []).every((a) => {
      const v = args[a.index] ?? 0;
      if (a.op === 'SCMP_CMP_MASKED_EQ') return (v & a.value) === (a.valueTwo ?? 0);
      throw new Error(`op ${a.op} not modelled`);
    });
    if (!match) continue;
    if (rule.action === 'SCMP_ACT_ALLOW') return 'allow';
    if (rule.action === 'SCMP_ACT_ERRNO') return rule.errnoRet ?? 1;
  }
  return profile.defaultErrnoRet ?? 1;
}

const O_CREAT = 0o100;
const O_TMPFILE = 0o20000000 | 0o200000;
const AT_FDCWD = -100;

describe('no privileged modes: every sandbox profile refuses setuid and setgid bits', () => {
  const profiles: Array<[string, SeccompProfile]> = [
    ['plain', JSON.parse(sandboxSeccomp()) as SeccompProfile],
    ['inner guard', JSON.parse(nestedNamespacesSeccomp()) as SeccompProfile],
  ];
  for (const [what, profile] of profiles) {
    it(`${what}: chmod, fchmod, fchmodat, creat, mknod(at) only without the bits`, () => {
      for (const mode of [0o755, 0o644, 0o1777, 0o777]) {
        assert.equal(decide(profile, 'chmod', [0, mode]), 'allow', `chmod ${mode.toString(8)}`);
        assert.equal(decide(profile, 'fchmod', [3, mode]), 'allow');
        assert.equal(decide(profile, 'fchmodat', [AT_FDCWD, 0, mode]), 'allow');
        assert.equal(decide(profile, 'creat', [0, mode]), 'allow');
        assert.equal(decide(profile, 'mknodat', [AT_FDCWD, 0, 0o100000 | mode, 0]), 'allow');
      }
      for (const mode of [0o4755, 0o2755, 0o6755, 0o4000, 0o2000, 0o7777]) {
        assert.equal(decide(profile, 'chmod', [0, mode]), 1, `chmod ${mode.toString(8)}`);
        assert.equal(decide(profile, 'fchmod', [3, mode]), 1);
        assert.equal(decide(profile, 'fchmodat', [AT_FDCWD, 0, mode]), 1);
        assert.equal(decide(profile, 'creat', [0, mode]), 1);
        assert.equal(decide(profile, 'mknod', [0, 0o100000 | mode, 0]), 1);
        assert.equal(decide(profile, 'mknodat', [AT_FDCWD, 0, 0o100000 | mode, 0]), 1);
      }
      // fchmodat2 stays refused as the default refuses it (not in moby 20.10's list).
      assert.equal(decide(profile, 'fchmodat2', [AT_FDCWD, 0, 0o755, 0]), 1);
    });

    it(`${what}: open and openat create only without the bits; other opens go whatever their mode`, () => {
      for (const [name, flagsAt] of [
        ['open', 1],
        ['openat', 2],
      ] as const) {
        const call = (flags: number, mode: number) => {
          const args = name === 'open' ? [0, flags, mode] : [AT_FDCWD, 0, flags, mode];
          assert.equal(args[flagsAt], flags);
          return decide(profile, name, args);
        };
        assert.equal(call(0, 0), 'allow');
        assert.equal(call(0, 0o4755), 'allow', 'an open without O_CREAT does not use its mode');
        assert.equal(call(O_CREAT | 1, 0o644), 'allow');
        assert.equal(call(O_CREAT | 1, 0o4755), 1);
        assert.equal(call(O_CREAT | 0o1000 | 1, 0o2755), 1);
        assert.equal(call(O_TMPFILE | 2, 0o755), 'allow');
        assert.equal(call(O_TMPFILE | 2, 0o6755), 1);
      }
    });

    it(`${what}: openat2 and io_uring answer ENOSYS (seccomp cannot see their modes); the inner guard keeps openat2 for bubblewrap`, () => {
      for (const name of UNFILTERABLE)
        assert.equal(
          decide(profile, name, [0, 0, 0, 0]),
          what === 'inner guard' && INNER_GUARD_KEEPS.includes(name as 'openat2') ? 'allow' : 38,
          name,
        );
      for (const name of ['chmod', 'fchmod', 'fchmodat', 'open', 'openat', 'creat', 'mknod', 'mknodat'])
        for (const rule of profile.syscalls)
          if (rule.action === 'SCMP_ACT_ALLOW' && rule.names.includes(name))
            assert.ok(rule.args?.length, `${name} is allowed unconditionally by ${rule.comment}`);
    });
  }

  it('--docker keeps setuid modes (its inner engine unpacks images that hold setuid files)', () => {
    const docker = JSON.parse(dockerSeccomp()) as SeccompProfile;
    assert.equal(decide(docker, 'chmod', [0, 0o4755]), 'allow');
  });

  it('changes nothing else: the same rules for every other syscall, in the same order', () => {
    const base = defaultSeccomp();
    const plain = withoutPrivilegedModes(base);
    const filtered = new Set([
      'chmod',
      'fchmod',
      'fchmodat',
      'fchmodat2',
      'open',
      'openat',
      'creat',
      'mknod',
      'mknodat',
      ...UNFILTERABLE,
    ]);
    const strip = (p: SeccompProfile) =>
      p.syscalls
        .filter((r) => !r.comment.startsWith('sbx:'))
        .map((r) => ({ ...r, names: r.names.filter((n) => !filtered.has(n)) }))
        .filter((r) => r.names.length > 0);
    assert.deepEqual(strip(plain), strip(base));
    assert.equal(plain.defaultAction, base.defaultAction);
    assert.equal(PRIVILEGE_BITS, 0o6000);
  });
});
