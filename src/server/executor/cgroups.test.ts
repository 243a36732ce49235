import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeCgroups, detectCgroups, type Cgroups } from './cgroups.js';
import { resolvePython } from './python.js';

const AS_ROOT = process.getuid?.() === 0;

describe('detectCgroups on a made-up machine (the files a kernel would show, in a temporary folder)', () => {
  let fsRoot: string;
  beforeEach(() => {
    fsRoot = mkdtempSync(join(tmpdir(), 'khd-cgroupfs-'));
  });
  afterEach(() => rmSync(fsRoot, { recursive: true, force: true }));

  const line = (id: number, point: string, fstype: string, options: string) => `${id} 1 0:${id} / ${point} rw,relatime - ${fstype} ${fstype} ${options}`;

  it('cgroup v2: enables the controllers for its parent group and writes each limit of a session group', () => {
    const mount = join(fsRoot, 'sys/fs/cgroup');
    mkdirSync(mount, { recursive: true });
    writeFileSync(join(mount, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
    const found = detectCgroups({ fsRoot, mountinfo: line(30, '/sys/fs/cgroup', 'cgroup2', 'rw,nsdelegate'), selfCgroup: '0::/\n' });
    expect('cgroups' in found && describeCgroups(found.cgroups)).toBe('cgroup v2 (memory, pids, cpu)');
    const cgroups = (found as { cgroups: Cgroups }).cgroups;
    expect(readFileSync(join(mount, 'cgroup.subtree_control'), 'utf8')).toBe('+memory +pids +cpu');
    expect(readFileSync(join(mount, 'khd', 'cgroup.subtree_control'), 'utf8')).toBe('+memory +pids +cpu');
    const group = cgroups.create('run-1', { memoryBytes: 256 * 1024 ** 2, cpus: 2, maxProcesses: 64 });
    const dir = join(mount, 'khd', 'run-1');
    expect(readFileSync(join(dir, 'memory.max'), 'utf8')).toBe(String(256 * 1024 ** 2));
    expect(readFileSync(join(dir, 'cpu.max'), 'utf8')).toBe('200000 100000');
    expect(readFileSync(join(dir, 'pids.max'), 'utf8')).toBe('64');
    expect(group.procsFiles).toEqual([join(dir, 'cgroup.procs')]);
    writeFileSync(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n');
    expect(group.oomKills()).toBe(2);
  });

  it('cgroup v1: a group per controller under the server’s own group, memory and swap capped together', () => {
    const infos = [line(32, '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'), line(35, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'), line(39, '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'), line(41, '/sys/fs/cgroup/unified', 'cgroup2', 'rw')];
    mkdirSync(join(fsRoot, 'sys/fs/cgroup/unified'), { recursive: true });
    writeFileSync(join(fsRoot, 'sys/fs/cgroup/unified/cgroup.controllers'), '');
    const self = '12:pids:/system.slice/khd.service\n7:cpu,cpuacct:/system.slice/khd.service\n4:memory:/system.slice/khd.service\n0::/system.slice/khd.service\n';
    const found = detectCgroups({ fsRoot, mountinfo: infos.join('\n'), selfCgroup: self });
    expect('cgroups' in found && describeCgroups(found.cgroups)).toBe('cgroup v1 (memory, pids, cpu)');
    const memory = join(fsRoot, 'sys/fs/cgroup/memory/system.slice/khd.service/khd/run-1');
    mkdirSync(memory, { recursive: true });
    // A kernel that accounts swap shows this file in every memory group.
    writeFileSync(join(memory, 'memory.memsw.limit_in_bytes'), '');
    const group = (found as { cgroups: Cgroups }).cgroups.create('run-1', { memoryBytes: 1024 ** 3, cpus: 1, maxProcesses: 10 });
    expect(readFileSync(join(memory, 'memory.limit_in_bytes'), 'utf8')).toBe(String(1024 ** 3));
    expect(readFileSync(join(memory, 'memory.memsw.limit_in_bytes'), 'utf8')).toBe(String(1024 ** 3));
    expect(readFileSync(join(fsRoot, 'sys/fs/cgroup/cpu,cpuacct/system.slice/khd.service/khd/run-1/cpu.cfs_quota_us'), 'utf8')).toBe('100000');
    expect(readFileSync(join(fsRoot, 'sys/fs/cgroup/pids/system.slice/khd.service/khd/run-1/pids.max'), 'utf8')).toBe('10');
    expect(group.procsFiles).toHaveLength(3);
  });

  it('says why there are none: no memory controller anywhere', () => {
    const found = detectCgroups({ fsRoot, mountinfo: line(39, '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'), selfCgroup: '1:pids:/\n' });
    expect(found).toEqual({ reason: 'this machine mounts no memory cgroup controller' });
  });
});

describe.runIf(AS_ROOT && 'cgroups' in detectCgroups())('cgroups on this machine', () => {
  const cgroups = () => (detectCgroups() as { cgroups: Cgroups }).cgroups;

  it('counts the processes the kernel killed for memory, and kills what is left', async () => {
    const group = cgroups().create(`test-${process.pid}`, { memoryBytes: 64 * 1024 ** 2 });
    // What the executor does: the process enters its group before it runs the code.
    const enter = 'for f in "$@"; do echo $$ > "$f"; done; exec "$0" -c "x = bytearray(256 << 20)"';
    const child = spawn('/bin/sh', ['-c', enter, resolvePython().executable, ...group.procsFiles], { stdio: 'ignore' });
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    expect(group.oomKills()).toBe(1);
    group.killAll();
    await expect.poll(() => group.remove()).toBe(true);
    expect(group.procsFiles.some((f) => existsSync(f))).toBe(false);
  });
});
