import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LogStream } from '../../protocol/types.js';
import { LocalExecutor } from './local-executor.js';
import { resolvePython } from './python.js';
import { nsmlRuntimeDir } from './runtime-path.js';
import { findBubblewrap } from './sandbox.js';

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

function run(executor: LocalExecutor, code: string, args: string[] = []) {
  writeFileSync(join(work, 'main.py'), code);
  const lines: [LogStream, string][] = [];
  const execution = executor.start(
    { workDir: work, datasetName: null, datasetParts: [], mounts: [], env: {}, sessionName: 'kim/None/1', entry: 'main.py', args, gpuIds: [] },
    (stream, batch) => batch.forEach((l) => lines.push([stream, l])),
  );
  return { execution, lines };
}

const executors = {
  sandboxed: () => new LocalExecutor({ python, runtimeDir: nsmlRuntimeDir(), bubblewrap: findBubblewrap(), stopGraceMs: 300 }),
  plain: () => new LocalExecutor({ python, runtimeDir: nsmlRuntimeDir(), bubblewrap: undefined, stopGraceMs: 300 }),
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
    const broken = new LocalExecutor({ python: { executable: '/nonexistent/python', prefixes: [] }, runtimeDir: nsmlRuntimeDir(), bubblewrap: undefined });
    const { execution } = run(broken, '');
    expect((await execution.result).error).toMatch(/ENOENT/);
  });
});
