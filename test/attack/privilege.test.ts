/**
 * Attack: no privilege comes back from the sandbox (issue 26, point 3). Root inside (the default
 * sandbox has sudo) and the agent user try every way of leaving a file in the workspace, or in a
 * host folder mounted with -v, that gives a host user more than they have: a setuid/setgid copy of
 * a shell (chmod, install, Python's os.chmod, a creating open with the bits in its mode, mknod of a
 * regular file, tar extraction of a setuid entry), a file capability (setcap), a device node
 * (mknod). Then, from the host, each file is stat'ed and every executable one is run as other host
 * users (TEST_USER sbxtest, and nobody): no setuid or setgid bit, no security.capability, no device
 * node, and nobody's effective IDs change.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NO_TEST_USER, sbx, TEST_USER, workspace } from '../helpers/cli.js';
import { cleanupTestResources } from '../helpers/engine.js';

after(() => cleanupTestResources());

const NOBODY = { name: 'nobody', uid: 65534, gid: 65534 };

/**
 * Every way the attacker tries, as a shell script taking the target folder ($1), a prefix ($2) for
 * the names it leaves and a program the host can run ($3: the host's own bash, as an attacker would
 * bring one); `no-openat2` as $4 leaves openat2 out (a creating open whose mode seccomp cannot see). Each attempt may fail; what matters is what is left on the host.
 */
const ATTEMPTS = String.raw`
d=$1; p=$2; b=$3
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$p$name: done"; else echo "$p$name: refused"; fi; }
try chmod sh -c "cp $b $d/$p-chmod && chmod 4755 $d/$p-chmod"
try chmod-sgid sh -c "cp $b $d/$p-sgid && chmod 2755 $d/$p-sgid"
try chown-chmod sh -c "cp $b $d/$p-chown && chown 0:0 $d/$p-chown; chmod u+s,g+s $d/$p-chown"
try install install -m 4755 $b $d/$p-install
try py-chmod python3 -c "import os,shutil; shutil.copy('$b','$d/$p-pychmod'); os.chmod('$d/$p-pychmod',0o6755)"
try py-fchmod python3 -c "import os,shutil; shutil.copy('$b','$d/$p-pyfchmod'); fd=os.open('$d/$p-pyfchmod',os.O_RDONLY); os.fchmod(fd,0o4755)"
try py-open python3 -c "
import os
src=open('$b','rb').read()
os.umask(0)
fd=os.open('$d/$p-open',os.O_CREAT|os.O_WRONLY|os.O_EXCL,0o6755); os.write(fd,src); os.close(fd)"
try py-mknod python3 -c "
import os,stat,shutil
os.umask(0)
os.mknod('$d/$p-mknodreg',stat.S_IFREG|0o4755)
shutil.copyfile('$b','$d/$p-mknodreg')"
try tar sh -c "
cd /tmp && rm -rf tarsrc-$p && mkdir tarsrc-$p && cp $b tarsrc-$p/$p-tar && chmod 755 tarsrc-$p/$p-tar &&
python3 -c \"
import tarfile
t=tarfile.open('/tmp/$p.tar','w')
i=t.gettarinfo('/tmp/tarsrc-$p/$p-tar','$p-tar'); i.mode=0o6755; i.uid=0; i.gid=0; i.uname='root'; i.gname='root'
t.addfile(i,open('/tmp/tarsrc-$p/$p-tar','rb'))
t.close()\" && tar -xpf /tmp/$p.tar --same-owner -C $d"
[ "$4" = no-openat2 ] || try py-openat2 python3 -c "
import ctypes,os,struct
libc=ctypes.CDLL(None,use_errno=True)
src=open('$b','rb').read()
os.umask(0)
how=struct.pack('QQQ',os.O_CREAT|os.O_WRONLY|os.O_EXCL,0o6755,0)
fd=libc.syscall(ctypes.c_long(437),ctypes.c_long(-100),ctypes.c_char_p(b'$d/$p-openat2'),ctypes.c_char_p(how),ctypes.c_long(24))
if fd<0: raise OSError(ctypes.get_errno(),'openat2')
os.write(fd,src); os.close(fd)"
try setcap sh -c "cp $b $d/$p-cap && setcap cap_setuid,cap_setgid+ep $d/$p-cap"
try mknod-chr mknod -m 666 $d/$p-chr c 1 1
try mknod-blk mknod -m 666 $d/$p-blk b 7 0
true
`;

/** The setuid/setgid bits, device nodes and capabilities left in a host folder; and each executable run as other users. */
function leftovers(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    const st = lstatSync(path);
    if (st.isCharacterDevice() || st.isBlockDevice())
      found.push(`${name}: a device node (${st.isCharacterDevice() ? 'char' : 'block'})`);
    if (st.mode & 0o6000)
      found.push(`${name}: mode ${(st.mode & 0o7777).toString(8)} (owner ${st.uid}:${st.gid})`);
    if (!st.isFile()) continue;
    const caps = spawnSync('getcap', [path], { encoding: 'utf8' }).stdout.trim();
    if (caps) found.push(`${name}: file capabilities ${caps}`);
    if (!(st.mode & 0o111)) continue;
    for (const user of [TEST_USER, NOBODY]) {
      // bash -p keeps an effective ID it was given instead of dropping it.
      const r = spawnSync(
        'setpriv',
        [
          `--reuid=${user.uid}`,
          `--regid=${user.gid}`,
          '--clear-groups',
          path,
          '-p',
          '-c',
          'echo $(id -u) $(id -g)',
        ],
        { encoding: 'utf8', timeout: 10_000 },
      );
      const ids = r.stdout.trim();
      if (r.status !== 0) found.push(`${name}: did not run as ${user.name}: ${r.stderr.trim()}`);
      else if (ids !== `${user.uid} ${user.gid}`)
        found.push(`${name}: run by ${user.name} (${user.uid}:${user.gid}) it has effective IDs ${ids}`);
    }
  }
  return found;
}

/**
 * The skip reason where the runtime does not apply the sandbox's seccomp profile (sbx measures it
 * at creation and warns: gVisor's runsc registered without --oci-seccomp, where a setuid bit set
 * inside reaches the host's file), else undefined.
 */
const unfiltered = (stderr: string): string | undefined =>
  /does not apply sbx's seccomp profile/.test(stderr)
    ? `measured at creation: ${/the runtime \S+ does not apply sbx's seccomp profile/.exec(stderr)?.[0]} (setuid bits would reach the host; see docs/runtimes.md, --oci-seccomp)`
    : undefined;

/** A host folder owned by TEST_USER that other users can enter (the runs as nobody need to). */
function hostFolder(): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sbx-vol-')));
  chownSync(dir, TEST_USER.uid, TEST_USER.gid);
  chmodSync(dir, 0o755);
  return dir;
}

describe('no privilege comes back from the sandbox: setuid, setgid, capabilities, device nodes', {
  timeout: 900_000,
  skip: NO_TEST_USER,
}, () => {
  it('root inside (sudo) and the agent user leave nothing in the workspace or a -v folder that lifts a host user', async (t) => {
    // The workspace belongs to TEST_USER: the agent user is uid 4242 and root inside is sudo's.
    const ws = await workspace({ owner: TEST_USER, git: false });
    chmodSync(ws, 0o755);
    const vol = hostFolder();
    // A program built for the host (its own bash), where the sandbox can read it.
    copyFileSync('/bin/bash', join(ws, '.payload'));
    chmodSync(join(ws, '.payload'), 0o755);
    const script = [
      `cat > /tmp/attempts.sh <<'EOF'\n${ATTEMPTS}\nEOF`,
      `sh /tmp/attempts.sh ${ws} agent ${ws}/.payload`,
      `sh /tmp/attempts.sh /vol agentv ${ws}/.payload`,
      `sudo -n sh /tmp/attempts.sh ${ws} root ${ws}/.payload`,
      `sudo -n sh /tmp/attempts.sh /vol rootv ${ws}/.payload`,
      'sudo -n id -u',
    ].join('\n');
    const r = await sbx(['run', 'shell', '-v', `${vol}:/vol`, '--', 'sh', '-c', script], { cwd: ws });
    if (unfiltered(r.stderr)) return t.skip(unfiltered(r.stderr));
    // sudo worked: root inside made the attempts (else the test proves nothing about root).
    assert.match(r.stdout, /^0$/m, `sudo did not work in the sandbox:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /rootchmod: /, r.stdout + r.stderr);
    const found = [...leftovers(ws).map((f) => `workspace/${f}`), ...leftovers(vol).map((f) => `-v/${f}`)];
    assert.deepEqual(found, [], `inside:\n${r.stdout}\nleft on the host:\n${found.join('\n')}`);
    // The ordinary work around it still goes: files are made, copied and made executable.
    const plain = await sbx(
      [
        'run',
        'shell',
        '--',
        'sh',
        '-c',
        'cp /bin/true ./ok && chmod 755 ./ok && sudo -n chmod 1777 . && ./ok && echo fine',
      ],
      { cwd: ws },
    );
    assert.equal(plain.stdout.trim(), 'fine', plain.stderr);
    execFileSync('rm', ['-rf', ws, vol]);
  });

  it("with the inner guard (--inner-sandbox), root of the agent's own user namespace leaves no setuid file either", async (t) => {
    const ws = await workspace({ owner: TEST_USER, git: false });
    chmodSync(ws, 0o755);
    copyFileSync('/bin/bash', join(ws, '.payload'));
    chmodSync(join(ws, '.payload'), 0o755);
    const script = [
      `cat > /tmp/attempts.sh <<'EOF'\n${ATTEMPTS}\nEOF`,
      // Root of its own user namespace (the agent's uid outside it): what bubblewrap and srt make.
      'unshare -Ur id -u',
      // Not openat2: the inner guard allows it for bubblewrap, a gap docs/inner-sandbox.md states.
      `unshare -Ur sh /tmp/attempts.sh ${ws} userns ${ws}/.payload no-openat2`,
    ].join('\n');
    const r = await sbx(['run', 'shell', '--inner-sandbox', '--', 'sh', '-c', script], { cwd: ws });
    if (unfiltered(r.stderr)) return t.skip(unfiltered(r.stderr));
    assert.match(r.stdout, /^0$/m, `no user namespace of its own in the sandbox:\n${r.stdout}\n${r.stderr}`);
    const found = leftovers(ws);
    assert.deepEqual(found, [], `inside:\n${r.stdout}\nleft on the host:\n${found.join('\n')}`);
    execFileSync('rm', ['-rf', ws]);
  });
});
