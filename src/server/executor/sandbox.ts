import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import type { ExecSpec } from './executor.js';

/** Where things appear inside the sandbox: fixed paths, so no host layout leaks to the code. */
export const SANDBOX_WORK_DIR = '/workspace';
export const SANDBOX_RUNTIME_DIR = '/opt/khd/python';
export const SANDBOX_DATA_ROOT = '/data';

const SYSTEM_TOP_LEVEL = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
// Only what programs need from /etc: no shadow, no host keys, no server config.
const ETC_FILES = [
  '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/localtime', '/etc/passwd', '/etc/group',
  '/etc/nsswitch.conf', '/etc/hosts', '/etc/alternatives', '/etc/ssl', '/etc/ca-certificates', '/etc/mime.types',
];

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
}

/**
 * The bubblewrap argument list for one session: every namespace unshared (so no network, not
 * even loopback), the system read-only, the work folder the only writable place besides a
 * private /tmp, the dataset's public part read-only, nothing of the server's data dir.
 */
export function bubblewrapArgs(spec: ExecSpec, paths: SandboxPaths): string[] {
  const args = ['--unshare-all', '--die-with-parent', '--cap-drop', 'ALL', '--hostname', 'khd'];
  args.push('--ro-bind', '/usr', '/usr');
  for (const top of SYSTEM_TOP_LEVEL) {
    if (!existsSync(top)) continue;
    if (lstatSync(top).isSymbolicLink()) args.push('--symlink', readlinkSync(top), top);
    else args.push('--ro-bind', top, top);
  }
  for (const file of ETC_FILES) args.push('--ro-bind-try', file, file);
  for (const prefix of paths.pythonPrefixes) {
    if (!prefix.startsWith('/usr/')) args.push('--ro-bind', prefix, prefix);
  }
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  for (const id of spec.gpuIds) args.push('--dev-bind-try', `/dev/nvidia${id}`, `/dev/nvidia${id}`);
  if (spec.gpuIds.length > 0) {
    for (const dev of ['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools']) args.push('--dev-bind-try', dev, dev);
  }
  args.push('--ro-bind', paths.runtimeDir, SANDBOX_RUNTIME_DIR);
  for (const part of spec.datasetParts) {
    args.push('--ro-bind', part.host, `${SANDBOX_DATA_ROOT}/${spec.datasetName}/${part.name}`);
  }
  for (const m of spec.mounts) args.push(m.writable ? '--bind' : '--ro-bind', m.host, m.inside);
  args.push('--bind', spec.workDir, SANDBOX_WORK_DIR, '--chdir', SANDBOX_WORK_DIR);
  return args;
}
