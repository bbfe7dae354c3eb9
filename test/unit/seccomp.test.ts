import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  CLONE_FLAGS,
  CLONE_NEWTIME,
  defaultSeccomp,
  defaultSeccompText,
  nestedNamespacesSeccomp,
  relaxForNestedNamespaces,
  type SeccompProfile,
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
    const relaxed = JSON.parse(nestedNamespacesSeccomp()) as SeccompProfile;
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
