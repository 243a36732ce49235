import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ExecSpec } from './executor.js';

/** Where things appear inside the sandbox: fixed paths, so no host layout leaks to the code. */
export const SANDBOX_WORK_DIR = '/workspace';
export const SANDBOX_RUNTIME_DIR = '/opt/khd/python';
export const SANDBOX_DATA_ROOT = '/data';

const SYSTEM_TOP_LEVEL = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
// Only what programs need from /etc: no shadow, no host keys, no server config, not even the
// machine's accounts (passwd and group are made for the session: see identityFiles).
const ETC_FILES = [
  '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/localtime',
  '/etc/nsswitch.conf', '/etc/hosts', '/etc/alternatives', '/etc/ssl', '/etc/ca-certificates', '/etc/mime.types',
];

/** The descriptors bubblewrap reads the session's /etc/passwd and /etc/group from. */
export const PASSWD_FD = 3;
export const GROUP_FD = 4;

/**
 * /etc/passwd and /etc/group of the sandbox: root, nobody and the session's own account `khd`
 * (home /tmp), so code that asks who it is (getpass.getuser(), ~ expansion) gets an answer, and
 * learns nothing of the machine's accounts.
 */
export function identityFiles(uid: number): { passwd: string; group: string } {
  return {
    passwd: `root:x:0:0:root:/root:/usr/sbin/nologin\nkhd:x:${uid}:${uid}:khd session:/tmp:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\nkhd:x:${uid}:\nnogroup:x:65534:\n`,
  };
}

export function findBubblewrap(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface SandboxPaths {
  pythonPrefixes: string[];
  runtimeDir: string;
  /** Size of the private /tmp. */
  tmpBytes: number;
  /** Keep CAP_SETUID and CAP_SETGID for setpriv, which drops them with root (a root server). */
  keepSetuid: boolean;
}

/**
 * The bubblewrap argument list for one session: every namespace unshared (so no network, not
 * even loopback), the system read-only, the work folder the only writable place besides a
 * private /tmp, the dataset's public part read-only, nothing of the server's data dir.
 */
export function bubblewrapArgs(spec: ExecSpec, paths: SandboxPaths): string[] {
  // Every namespace but the user one: under a root server a user namespace would map only
  // root, and setpriv could not become the session uid. Without one bwrap needs to be root
  // or able to make one; unprivileged it makes one itself.
  const namespaces = paths.keepSetuid
    ? ['--unshare-ipc', '--unshare-pid', ...(spec.network ? [] : ['--unshare-net']), '--unshare-uts', '--unshare-cgroup-try']
    : ['--unshare-all', ...(spec.network ? ['--share-net'] : [])];
  const args = [...namespaces, '--die-with-parent', '--cap-drop', 'ALL', '--hostname', 'khd'];
  if (paths.keepSetuid) args.push('--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID');
  // bwrap makes a mount point's missing parents 0700: the session uid could not reach it.
  const made = new Set<string>(['/']);
  const parents = (target: string) => {
    const missing: string[] = [];
    for (let d = dirname(target); !made.has(d); d = dirname(d)) missing.unshift(d);
    for (const d of missing) {
      made.add(d);
      args.push('--perms', '0755', '--dir', d);
    }
  };
  const bind = (how: string, host: string, inside: string) => {
    parents(inside);
    args.push(how, host, inside);
  };
  args.push('--ro-bind', '/usr', '/usr');
  for (const top of SYSTEM_TOP_LEVEL) {
    if (!existsSync(top)) continue;
    if (lstatSync(top).isSymbolicLink()) args.push('--symlink', readlinkSync(top), top);
    else args.push('--ro-bind', top, top);
  }
  args.push('--perms', '0755', '--dir', '/etc');
  for (const file of ETC_FILES) args.push('--ro-bind-try', file, file);
  // Readable by the session's uid: bubblewrap makes such files 0600 unless told.
  args.push('--perms', '0644', '--ro-bind-data', String(PASSWD_FD), '/etc/passwd', '--perms', '0644', '--ro-bind-data', String(GROUP_FD), '/etc/group');
  // World-writable with the sticky bit, as /tmp always is: the session uid is not the sandbox's root.
  args.push('--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--size', String(paths.tmpBytes), '--tmpfs', '/tmp');
  if (spec.limits?.shmBytes) args.push('--perms', '1777', '--size', String(spec.limits.shmBytes), '--tmpfs', '/dev/shm');
  for (const id of spec.gpuDevices ?? spec.gpuIds) args.push('--dev-bind-try', `/dev/nvidia${id}`, `/dev/nvidia${id}`);
  if (spec.gpuIds.length > 0) {
    for (const dev of ['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools']) args.push('--dev-bind-try', dev, dev);
  }
  // After /tmp's tmpfs: a prefix under /tmp (a package layer in a data dir there) stays visible.
  for (const prefix of paths.pythonPrefixes) {
    if (!prefix.startsWith('/usr/')) bind('--ro-bind', prefix, prefix);
  }
  bind('--ro-bind', paths.runtimeDir, SANDBOX_RUNTIME_DIR);
  for (const part of spec.datasetParts) {
    bind('--ro-bind', part.host, `${SANDBOX_DATA_ROOT}/${spec.datasetName}/${part.name}`);
  }
  for (const m of spec.mounts) bind(m.writable ? '--bind' : '--ro-bind', m.host, m.inside);
  bind('--bind', spec.workDir, SANDBOX_WORK_DIR);
  args.push('--chdir', SANDBOX_WORK_DIR);
  return args;
}
