import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LogStream } from '../../protocol/types.js';
import type { ExecLimits } from './executor.js';
import { detectCgroups, type Cgroups } from './cgroups.js';
import { LocalExecutor, type LocalExecutorOptions } from './local-executor.js';
import { resolvePython } from './python.js';
import { nsmlRuntimeDir } from '../package-files.js';
import { findBubblewrap } from './sandbox.js';
import { UidPool } from './uids.js';

const python = resolvePython();

/** A process's state letter from /proc (Z: dead, waiting to be reaped), or 'gone'. */
function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return 'gone';
  }
}
let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'khd-exec-'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

function run(executor: LocalExecutor, code: string, args: string[] = [], limits: ExecLimits = {}, dir = work) {
  writeFileSync(join(dir, 'main.py'), code);
  const lines: [LogStream, string][] = [];
  const execution = executor.start(
    { workDir: dir, datasetName: null, datasetParts: [], mounts: [], env: {}, sessionName: 'kim/None/1', entry: 'main.py', args, gpuIds: [], limits },
    (stream, batch) => batch.forEach((l) => lines.push([stream, l])),
  );
  return { execution, lines };
}

const AS_ROOT = process.getuid?.() === 0;
/** Uids of this file's own, apart from the servers other test files start. */
const TEST_UIDS = { first: 71000, count: 50 };
const cgroups = AS_ROOT ? detectCgroups() : { reason: 'not root' };
const make = (options: Partial<LocalExecutorOptions>) =>
  (more: Partial<LocalExecutorOptions> = {}) =>
    new LocalExecutor({ python, runtimeDir: nsmlRuntimeDir(), bubblewrap: findBubblewrap(), stopGraceMs: 300, ...options, ...more });
const executors = {
  sandboxed: make({}),
  plain: make({ bubblewrap: undefined }),
  // What a root server runs: the sandbox, entered as a uid of the session's own (CI runs as
  // root), with its limits polled (--no-cgroups) or kept by the kernel.
  ...(AS_ROOT ? { 'sandboxed, own uid, polled': make({ uids: new UidPool(TEST_UIDS) }) } : {}),
  ...('cgroups' in cgroups ? { 'sandboxed, own uid, cgroups': make({ uids: new UidPool(TEST_UIDS), cgroups: cgroups.cgroups }) } : {}),
};

describe.each(Object.entries(executors))('LocalExecutor (%s)', (_kind, make) => {
  it('resolves the real interpreter, not a shim', () => {
    expect(python.executable).not.toContain('/shims/');
  });

  it('records the exit code and both streams, line by line, unbuffered', async () => {
    const { execution, lines } = run(make(), 'import sys\nprint("out")\nprint("err", file=sys.stderr)\nsys.exit(7)\n');
    const result = await execution.result;
    expect(result).toMatchObject({ exitCode: 7, signal: null, timedOut: false, stopped: false });
    expect(result.endedAt).toBeGreaterThanOrEqual(result.startedAt);
    expect(lines).toEqual([['stdout', 'out'], ['stderr', 'err']]);
  });

  it('passes arguments as they are, never through a shell', async () => {
    const { execution, lines } = run(make(), 'import sys\nprint(sys.argv[1:])\n', ['$(touch pwned)', 'a b', ';ls']);
    await execution.result;
    expect(lines).toEqual([['stdout', "['$(touch pwned)', 'a b', ';ls']"]]);
  });

  it('stop sends SIGTERM, and SIGKILL after the grace period to code that ignores it', async () => {
    const code = 'import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint("ready", flush=True)\ntime.sleep(60)\n';
    const { execution, lines } = run(make(), code);
    while (lines.length === 0) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    execution.stop();
    const result = await execution.result;
    expect(result.stopped).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('lets code that handles SIGTERM finish its work on stop (e.g. save a checkpoint)', async () => {
    const code = [
      'import signal, sys, time',
      'def on_term(*_):',
      '    print("saving before exit", flush=True)',
      '    sys.exit(0)',
      'signal.signal(signal.SIGTERM, on_term)',
      'print("ready", flush=True)',
      'time.sleep(60)',
    ].join('\n');
    const { execution, lines } = run(make(), code);
    while (lines.length === 0) await new Promise((r) => setTimeout(r, 20));
    execution.stop();
    const result = await execution.result;
    expect(lines.map(([, l]) => l)).toEqual(['ready', 'saving before exit']);
    expect(result).toMatchObject({ stopped: true, exitCode: 0 });
  });

  it('kills what the code left running in its process group when it exits', async () => {
    const code = 'import subprocess, sys\np = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])\nprint(p.pid, flush=True)\n';
    const { execution, lines } = run(make(), code);
    expect((await execution.result).exitCode).toBe(0);
    // Unsandboxed the pid is the host's, so its end can be checked (in a sandbox the test
    // would hang instead: the orphan would hold the output pipe open).
    if (_kind === 'plain') {
      // Its pipes close early in its exit, so give the kernel a moment to finish it.
      const pid = Number(lines[0]![1]);
      for (let i = 0; i < 50 && !/^(gone|Z)$/.test(processState(pid)); i++) await new Promise((r) => setTimeout(r, 20));
      expect(processState(pid)).toMatch(/^(gone|Z)$/);
    }
  });

  it('reports a start failure instead of throwing', async () => {
    const broken = new LocalExecutor({ python, runtimeDir: nsmlRuntimeDir(), bubblewrap: '/nonexistent/bwrap' });
    const { execution } = run(broken, '');
    expect((await execution.result).error).toMatch(/ENOENT/);
  });

  it('says so when the interpreter cannot be run', async () => {
    const broken = new LocalExecutor({ python: { executable: '/nonexistent/python', prefixes: [] }, runtimeDir: nsmlRuntimeDir(), bubblewrap: undefined });
    const { execution, lines } = run(broken, '');
    expect((await execution.result).exitCode).not.toBe(0);
    expect(lines.map((l) => l[1]).join('\n')).toMatch(/\/nonexistent\/python: No such file or directory/);
  });
});

describe.each(Object.entries(executors))('limits (%s)', (kind, makeExecutor) => {
  it('ends code that allocates past the memory limit, saying why', async () => {
    const { execution } = run(makeExecutor(), 'chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n', [], { memoryBytes: 128 * 1024 ** 2 });
    expect((await execution.result).limit).toBe('out of memory (limit 128 MB)');
  });

  it('sums the memory of all the processes: workers each under the limit are ended together', async () => {
    const code = [
      'import os, time',
      'for _ in range(4):',
      '    if os.fork() == 0:',
      '        data = bytearray(60 << 20)',
      '        time.sleep(30)',
      '        os._exit(0)',
      'time.sleep(30)',
    ].join('\n');
    const started = Date.now();
    const { execution } = run(makeExecutor(), code, [], { memoryBytes: 128 * 1024 ** 2 });
    const result = await execution.result;
    expect(result.limit).toBe('out of memory (limit 128 MB)');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('ends only the session over its limit when several run at once', async () => {
    const executor = makeExecutor();
    const other = mkdtempSync(join(tmpdir(), 'khd-exec-'));
    const calm = run(executor, 'import time\ntime.sleep(1)\nprint("calm")\n', [], { memoryBytes: 128 * 1024 ** 2 }, other);
    const greedy = run(executor, 'chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n', [], { memoryBytes: 128 * 1024 ** 2 });
    const [calmResult, greedyResult] = await Promise.all([calm.execution.result, greedy.execution.result]);
    expect(greedyResult.limit).toBe('out of memory (limit 128 MB)');
    expect(calmResult).toMatchObject({ exitCode: 0 });
    expect(calmResult.limit).toBeUndefined();
    expect(calm.lines).toEqual([['stdout', 'calm']]);
    rmSync(other, { recursive: true, force: true });
  });

  it('stops code that runs past the time limit', async () => {
    const { execution } = run(makeExecutor(), 'import time\nwhile True:\n    time.sleep(0.05)\n', [], { wallMs: 1000 });
    const result = await execution.result;
    expect(result).toMatchObject({ limit: 'time limit 1 s reached', timedOut: true, stopped: false });
  });

  it.runIf(!kind.endsWith('cgroups'))('runs the code on as many CPUs as it asked for', async () => {
    const { execution, lines } = run(makeExecutor(), 'import os\nprint(len(os.sched_getaffinity(0)))\n', [], { cpus: 1 });
    await execution.result;
    expect(lines).toEqual([['stdout', '1']]);
  });

  it('counts the memory of children that left the process group with setsid()', async () => {
    const code = [
      'import os, time',
      'for _ in range(4):',
      '    if os.fork() == 0:',
      '        os.setsid()',
      '        data = bytearray(60 << 20)',
      '        time.sleep(30)',
      '        os._exit(0)',
      'time.sleep(30)',
    ].join('\n');
    const { execution } = run(makeExecutor(), code, [], { memoryBytes: 128 * 1024 ** 2 });
    expect((await execution.result).limit).toBe('out of memory (limit 128 MB)');
  });

  it.runIf(kind !== 'plain')('counts what the code writes to /dev/shm and /tmp as memory', async () => {
    for (const folder of ['/dev/shm', '/tmp']) {
      const code = `f = open("${folder}/fill", "wb")\nfor _ in range(48):\n    f.write(b"x" * (8 << 20))\n    f.flush()\nimport time\ntime.sleep(30)\n`;
      const { execution } = run(makeExecutor({ tmpBytes: 1024 ** 3 }), code, [], { memoryBytes: 128 * 1024 ** 2, shmBytes: 1024 ** 3 });
      expect((await execution.result).limit, folder).toBe('out of memory (limit 128 MB)');
    }
  });

  it.runIf(kind !== 'plain')('gives the code a private /tmp of a capped size', async () => {
    const code = 'try:\n    open("/tmp/big", "wb").write(b"x" * (2 << 20))\n    print("wrote")\nexcept OSError as e:\n    print("refused", e.errno)\n';
    const { execution, lines } = run(makeExecutor({ tmpBytes: 1024 * 1024 }), code);
    await execution.result;
    expect(lines).toEqual([['stdout', 'refused 28']]);
  });
});

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
    const pool = new UidPool({ first: 71100, count: 2 });
    const executor = make({ uids: pool })();
    const other = mkdtempSync(join(tmpdir(), 'khd-exec-'));
    const a = run(executor, 'import os, time\nprint(os.getuid(), flush=True)\ntime.sleep(30)\n');
    const b = run(executor, 'import os\nprint(os.getuid())\n', [], {}, other);
    await b.execution.result;
    await expect.poll(() => a.lines.length).toBe(1);
    expect(new Set([a.lines[0]![1], b.lines[0]![1]])).toEqual(new Set(['71100', '71101']));
    expect(pool.inUse).toBe(1);
    a.execution.stop();
    await a.execution.result;
    expect(pool.inUse).toBe(0);
    rmSync(other, { recursive: true, force: true });
  });

  it('refuses to start a session when every uid is in use, saying what to do', async () => {
    const executor = make({ uids: new UidPool({ first: 71200, count: 1 }) })();
    const other = mkdtempSync(join(tmpdir(), 'khd-exec-'));
    const first = run(executor, READY);
    await expect.poll(() => first.lines.length).toBe(1);
    const second = run(executor, 'print(1)', [], {}, other);
    expect((await second.execution.result).error).toBe('every session uid (71200-71200) is in use: give the server more with --session-uids');
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
    const executor = make({ uids: new UidPool({ first: 71300, count: 2 }), maxProcesses: 32 })();
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
