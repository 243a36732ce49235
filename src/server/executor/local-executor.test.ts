import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExecLimits } from './executor.js';
import { executorKinds, processState, python, run as runIn, workFolders } from '../../../test/helpers/executor.js';
import { executorUids } from '../../../test/helpers/uids.js';
import { LocalExecutor } from './local-executor.js';
import { nsmlRuntimeDir } from '../package-files.js';

const work = workFolders();
const run = (executor: LocalExecutor, code: string, args: string[] = [], limits: ExecLimits = {}, dir = work.path) => runIn(executor, dir, code, args, limits);
const executors = executorKinds(executorUids(0, 50));

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
    // Not before the grace period: the code had its chance to exit on SIGTERM.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it.each([0, 5, 20])('a stop %i ms after the launch reaches the code: it ends long before the SIGKILL grace', async (afterMs) => {
    // A grace far longer than the test may take: only a stop that reached the code ends it in time.
    const { execution } = run(make({ stopGraceMs: 120_000 }), 'import time\ntime.sleep(300)\n');
    if (afterMs === 0) execution.stop();
    else setTimeout(() => execution.stop(), afterMs);
    expect((await execution.result).stopped).toBe(true);
  }, 60_000);

  it.runIf(availableParallelism() >= 2)('pins two 1-CPU sessions to different cores where no cgroup caps CPU time', async () => {
    const executor = make({ cgroups: undefined });
    const other = mkdtempSync(join(tmpdir(), 'khd-exec-'));
    const code = 'import os, time\nprint(sorted(os.sched_getaffinity(0)), flush=True)\ntime.sleep(30)\n';
    const a = run(executor, code, [], { cpus: 1 });
    const b = run(executor, code, [], { cpus: 1 }, other);
    await expect.poll(() => a.lines.length + b.lines.length).toBe(2);
    expect(a.lines[0]![1]).not.toBe(b.lines[0]![1]);
    a.execution.stop();
    b.execution.stop();
    await Promise.all([a.execution.result, b.execution.result]);
    rmSync(other, { recursive: true, force: true });
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
    const { execution } = run(makeExecutor(), code, [], { memoryBytes: 128 * 1024 ** 2 });
    // Ended by the limit (the workers would sleep 30 s): the reason says so.
    expect((await execution.result).limit).toBe('out of memory (limit 128 MB)');
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
