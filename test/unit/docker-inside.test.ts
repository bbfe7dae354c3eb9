import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getAgent } from '../../src/agents/registry.js';
import type { ContainerInfo } from '../../src/engine/containers.js';
import {
  checkDockerRequest,
  DOCKER_STORE,
  dockerAddition,
  dockerSeccomp,
  OWN_NAMESPACE_SYSCALLS,
} from '../../src/sandbox/docker-inside.js';
import { plainRequest, reattachPlan } from '../../src/sandbox/plan.js';
import {
  CLONE_FLAGS,
  CLONE_NEWTIME,
  defaultSeccomp,
  type SeccompProfile,
} from '../../src/sandbox/seccomp.js';
import { DROPPED_CAPABILITIES } from '../../src/sandbox/security.js';
import { SbxError } from '../../src/shared/errors.js';
import { LABEL } from '../../src/shared/labels.js';

const ALL = Object.values(CLONE_FLAGS).reduce((a, b) => a | b, 0);

/** Whether seccomp lets a process without CAP_SYS_ADMIN make `syscall(flags)` (x86_64 rules). */
function allows(profile: SeccompProfile, syscall: string, flags = 0): boolean {
  return profile.syscalls.some(
    (rule) =>
      rule.names.includes(syscall) &&
      rule.action === 'SCMP_ACT_ALLOW' &&
      !rule.includes.caps?.length &&
      !rule.includes.arches?.length &&
      (rule.args ?? []).every(
        (a) => a.op === 'SCMP_CMP_MASKED_EQ' && (flags & a.value) === (a.valueTwo ?? 0),
      ),
  );
}

describe('the --docker seccomp profile', () => {
  const profile = JSON.parse(dockerSeccomp()) as SeccompProfile;
  const base = defaultSeccomp();

  it('lets clone and unshare make every namespace type but cgroup and time (the default refuses them all)', () => {
    const allowed = ALL & ~CLONE_FLAGS.CLONE_NEWCGROUP;
    assert.equal(allows(base, 'clone', CLONE_FLAGS.CLONE_NEWUSER), false);
    assert.equal(allows(base, 'unshare', CLONE_FLAGS.CLONE_NEWUSER), false);
    assert.equal(allows(profile, 'clone', allowed), true);
    assert.equal(allows(profile, 'unshare', allowed), true);
    // A cgroup namespace of its own would let root in the sandbox mount its cgroups and raise its limits.
    assert.equal(allows(profile, 'clone', CLONE_FLAGS.CLONE_NEWUSER | CLONE_FLAGS.CLONE_NEWCGROUP), false);
    assert.equal(allows(profile, 'unshare', CLONE_FLAGS.CLONE_NEWUSER | CLONE_FLAGS.CLONE_NEWCGROUP), false);
    assert.equal(allows(profile, 'unshare', CLONE_FLAGS.CLONE_NEWUSER | CLONE_NEWTIME), false);
  });

  it('adds only setns, chroot and the mount API to what the nested profile allows, and keeps the default action', () => {
    assert.equal(profile.defaultAction, base.defaultAction);
    for (const name of OWN_NAMESPACE_SYSCALLS) {
      assert.equal(allows(base, name), false, `${name} is refused by default`);
      assert.equal(allows(profile, name), true, `${name} is allowed`);
    }
    // Still refused: what a sandbox never needs, namespaces or not.
    for (const name of ['kexec_load', 'init_module', 'bpf', 'perf_event_open', 'keyctl', 'clone3'])
      assert.equal(allows(profile, name), false, name);
  });
});

describe('dockerAddition', () => {
  it('adds the engine volume, /dev/net/tun and the profile; capabilities as any sandbox, nothing privileged', () => {
    const a = dockerAddition('sbx-app-1234', dockerSeccomp());
    assert.deepEqual(a.mounts, [{ Type: 'volume', Source: 'sbx-app-1234-docker', Target: DOCKER_STORE }]);
    assert.equal(a.labels?.[LABEL.docker], 'sbx-app-1234-docker');
    // The security addition's CapDrop (SETFCAP included) stays: this addition does not touch it.
    assert.equal(a.host?.CapDrop, undefined);
    assert.ok(DROPPED_CAPABILITIES.includes('SETFCAP'));
    assert.deepEqual(
      (a.host?.Devices as Array<{ PathOnHost: string }> | undefined)?.map((d) => d.PathOnHost),
      ['/dev/net/tun'],
    );
    assert.equal(a.host?.Privileged, undefined);
    assert.equal(a.host?.CapAdd, undefined);
    assert.match(a.host?.SecurityOpt?.[0] ?? '', /^seccomp=\{/);
  });
});

describe('checkDockerRequest', () => {
  const ok = {
    mountDockerSocket: false,
    noSudo: false,
    runtime: undefined,
    gvisor: false,
  };
  const usage = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (err) => err instanceof SbxError && err.kind === 'usage' && pattern.test(err.message));

  it('accepts a plain request and refuses the host socket, --no-sudo and gVisor', () => {
    checkDockerRequest(ok);
    usage(() => checkDockerRequest({ ...ok, mountDockerSocket: true }), /--mount-docker-socket/);
    usage(() => checkDockerRequest({ ...ok, noSudo: true }), /no-new-privileges/);
    usage(() => checkDockerRequest({ ...ok, runtime: 'runsc', gvisor: true }), /gVisor/);
  });
});

describe('reattach with --docker', () => {
  const container = (labels: Record<string, string>): ContainerInfo =>
    ({
      Id: 'c0ffee',
      Name: '/sbx-app-12345678',
      State: { Running: true },
      Config: {
        Image: 'sbx/base:abc',
        Labels: {
          [LABEL.managed]: 'true',
          [LABEL.workspace]: '/home/ada/app',
          [LABEL.agent]: 'shell',
          [LABEL.credentials]: 'sandbox',
          ...labels,
        },
      },
      HostConfig: { Binds: [], PortBindings: {} },
    }) as unknown as ContainerInfo;
  const request = (docker: boolean | undefined) => ({
    ...plainRequest('/home/ada/app', getAgent('shell')),
    docker,
  });

  it('is refused on a sandbox made without an engine (and --no-docker on one made with it)', () => {
    const conflict = (fn: () => unknown, pattern: RegExp) =>
      assert.throws(
        fn,
        (err) => err instanceof SbxError && err.kind === 'conflict' && pattern.test(err.message),
      );
    conflict(
      () => reattachPlan(container({}), request(true)),
      /without a Docker engine.*applies only when a sandbox is created/,
    );
    conflict(
      () => reattachPlan(container({ [LABEL.docker]: 'v' }), request(false)),
      /with a Docker engine.*--no-docker/,
    );
    assert.equal(
      reattachPlan(container({ [LABEL.docker]: 'v' }), request(true)).sandbox.name,
      'sbx-app-12345678',
    );
    assert.equal(reattachPlan(container({ [LABEL.docker]: 'v' }), request(undefined)).start, false);
  });
});
