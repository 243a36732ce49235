// What keeps a root server's sessions apart from each other: a uid of each one's own, and cgroups.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AS_ROOT, cgroups, make, run as runIn, workFolders } from '../../../test/helpers/executor.js';
import { executorUids } from '../../../test/helpers/uids.js';
import type { Cgroups } from './cgroups.js';
import type { ExecLimits } from './executor.js';
import type { LocalExecutor } from './local-executor.js';
import { UidPool } from './uids.js';

const work = workFolders();
const run = (executor: LocalExecutor, code: string, args: string[] = [], limits: ExecLimits = {}, dir = work.path) => runIn(executor, dir, code, args, limits);
/** Uids of this file's own, apart from the other test files'. */
const TEST_UIDS = executorUids(50, 50);

/** The host pid of the process whose command line holds `marker`. */
function hostPid(marker: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.includes(marker) && argv.some((a) => a.endsWith('main.py'))) return Number(entry);
    } catch {
      // Gone.
    }
  }
  return undefined;
}

const READY = 'import sys, time\nprint("ready", flush=True)\ntime.sleep(30)\n';

describe.runIf(AS_ROOT)('own uids (a root server)', () => {
  it('runs the code as an unprivileged uid that cannot write into its code but can write beside it', async () => {
    const code = [
      'import getpass, os',
      'print(os.getuid(), os.getgid(), os.getgroups(), getpass.getuser())',
      'try:',
      '    open("main.py", "a").write("#")',
      '    print("code writable")',
      'except PermissionError:',
      '    print("code read-only")',
      'open("out.txt", "w").write("ok")',
      'print(open("/proc/self/status").read().split("CapEff:")[1].split()[0])',
      'print(sorted(l.split(":")[0] for l in open("/etc/passwd")))',
    ].join('\n');
    const { execution, lines } = run(make({ uids: new UidPool(TEST_UIDS) })(), code);
    expect((await execution.result).exitCode, JSON.stringify(lines)).toBe(0);
    expect(lines).toEqual([
      ['stdout', `${TEST_UIDS.first} ${TEST_UIDS.first} [] khd`],
      ['stdout', 'code read-only'],
      ['stdout', '0000000000000000'],
      ['stdout', "['khd', 'nobody', 'root']"],
    ]);
  });

  it('gives two sessions running at once two uids, and a uid back only when its session is over', async () => {
    const pool = new UidPool(executorUids(100, 2));
    const executor = make({ uids: pool })();
    const other = mkdtempSync(join(tmpdir(), 'khd-exec-'));
    const a = run(executor, 'import os, time\nprint(os.getuid(), flush=True)\ntime.sleep(30)\n');
    const b = run(executor, 'import os\nprint(os.getuid())\n', [], {}, other);
    await b.execution.result;
    await expect.poll(() => a.lines.length).toBe(1);
    const first = executorUids(100, 2).first;
    expect(new Set([a.lines[0]![1], b.lines[0]![1]])).toEqual(new Set([String(first), String(first + 1)]));
    expect(pool.inUse).toBe(1);
    a.execution.stop();
    await a.execution.result;
    expect(pool.inUse).toBe(0);
    rmSync(other, { recursive: true, force: true });
  });

  it('refuses to start a session when every uid is in use, saying what to do', async () => {
    const executor = make({ uids: new UidPool(executorUids(200, 1)) })();
    const other = mkdtempSync(join(tmpdir(), 'khd-exec-'));
    const first = run(executor, READY);
    await expect.poll(() => first.lines.length).toBe(1);
    const second = run(executor, 'print(1)', [], {}, other);
    const only = executorUids(200, 1).first;
    expect((await second.execution.result).error).toBe(`every session uid (${only}-${only}) is in use: give the server more with --session-uids`);
    first.execution.stop();
    await first.execution.result;
    rmSync(other, { recursive: true, force: true });
  });

  it('caps the processes a session may have: a fork bomb runs out, and ends', async () => {
    const code = [
      'import os, time',
      'n = 0',
      'try:',
      '    while True:',
      '        if os.fork() == 0:',
      '            time.sleep(5)',
      '            os._exit(0)',
      '        n += 1',
      'except OSError as e:',
      '    print("refused after", n)',
    ].join('\n');
    const executor = make({ uids: new UidPool(TEST_UIDS), maxProcesses: 32 })();
    const { execution, lines } = run(executor, code);
    await execution.result;
    const refused = Number(/refused after (\d+)/.exec(lines.map((l) => l[1]).join('\n'))?.[1]);
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThan(32);
  });

  it("leaves another session's processes alone: one fork bomb does not stop another session from forking", async () => {
    const executor = make({ uids: new UidPool(executorUids(300, 2)), maxProcesses: 32 })();
    const bomb = [
      'import os, time',
      'n = 0',
      'try:',
      '    while True:',
      '        if os.fork() == 0:',
      '            time.sleep(30)',
      '            os._exit(0)',
      '        n += 1',
      'except OSError:',
      '    print("bomb refused after", n, flush=True)',
      'time.sleep(30)',
    ].join('\n');
    const other = mkdtempSync(join(tmpdir(), 'khd-exec-'));
    const a = run(executor, bomb);
    await expect.poll(() => a.lines.length).toBe(1);
    const fork8 = 'import os\nfor _ in range(8):\n    if os.fork() == 0:\n        os._exit(0)\n    os.wait()\nprint("forked 8")\n';
    const b = run(executor, fork8, [], {}, other);
    expect((await b.execution.result).exitCode, JSON.stringify(b.lines)).toBe(0);
    expect(b.lines).toEqual([['stdout', 'forked 8']]);
    a.execution.stop();
    await a.execution.result;
    rmSync(other, { recursive: true, force: true });
  });
});

describe.runIf('cgroups' in cgroups)('cgroups (a root server)', () => {
  const cg = () => (cgroups as { cgroups: Cgroups }).cgroups;

  it('runs each session in a group of its own with its memory, CPU and process limits, and removes it after', async () => {
    const marker = `marker-${process.pid}-${Date.now()}`;
    const executor = make({ uids: new UidPool(TEST_UIDS), cgroups: cg() })();
    const { execution, lines } = run(executor, READY, [marker], { memoryBytes: 256 * 1024 ** 2, cpus: 1 });
    await expect.poll(() => lines.length).toBe(1);
    const pid = hostPid(marker);
    expect(pid).toBeDefined();
    const groups = Object.fromEntries(
      readFileSync(`/proc/${pid}/cgroup`, 'utf8')
        .split('\n')
        .filter(Boolean)
        .flatMap((l) => {
          const [, list, path] = /^\d+:([^:]*):(.*)$/.exec(l)!;
          return (list || 'unified').split(',').map((c) => [c, path!] as const);
        }),
    );
    const dir = (controller: string) => (cg().version === 1 ? `/sys/fs/cgroup/${controller}${groups[controller]}` : `/sys/fs/cgroup${groups.unified}`);
    const read = (controller: string, file: string) => readFileSync(join(dir(controller), file), 'utf8').trim();
    expect(dir('memory')).toMatch(/\/khd\/run-\d+-\d+$/);
    if (cg().version === 1) {
      expect(read('memory', 'memory.limit_in_bytes')).toBe(String(256 * 1024 ** 2));
      expect(read('cpu', 'cpu.cfs_quota_us')).toBe('100000');
      expect(read('pids', 'pids.max')).toBe('1024');
    } else {
      expect(read('memory', 'memory.max')).toBe(String(256 * 1024 ** 2));
      expect(read('cpu', 'cpu.max')).toBe('100000 100000');
      expect(read('pids', 'pids.max')).toBe('1024');
    }
    execution.stop();
    await execution.result;
    expect(existsSync(dir('memory'))).toBe(false);
  });
});
