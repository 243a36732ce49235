// What the executor's tests share: an interpreter, a fresh work folder per test, a run of some
// code with its lines collected, and the executors a server can be configured with.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import type { UidRange } from '../../src/protocol/uid-range.js';
import type { LogStream } from '../../src/protocol/types.js';
import { detectCgroups } from '../../src/server/executor/cgroups.js';
import type { ExecLimits, Executor } from '../../src/server/executor/executor.js';
import { LocalExecutor, type LocalExecutorOptions } from '../../src/server/executor/local-executor.js';
import { resolvePython } from '../../src/server/executor/python.js';
import { findBubblewrap } from '../../src/server/executor/sandbox.js';
import { UidPool } from '../../src/server/executor/uids.js';
import { nsmlRuntimeDir } from '../../src/server/package-files.js';

export const python = resolvePython();
export const AS_ROOT = process.getuid?.() === 0;
export const cgroups = AS_ROOT ? detectCgroups() : { reason: 'not root' };

/** A process's state letter from /proc (Z: dead, waiting to be reaped), or 'gone'. */
export function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return 'gone';
  }
}

/** A fresh work folder for each test of the file that calls it. */
export function workFolders(): { readonly path: string } {
  const work = { path: '' };
  beforeEach(() => {
    work.path = mkdtempSync(join(tmpdir(), 'khd-exec-'));
  });
  afterEach(() => rmSync(work.path, { recursive: true, force: true }));
  return work;
}

/** Runs `code` as main.py of `dir` with `executor`; the execution and the lines it printed, as they come. */
export function run(executor: Executor, dir: string, code: string, args: string[] = [], limits: ExecLimits = {}) {
  writeFileSync(join(dir, 'main.py'), code);
  const lines: [LogStream, string][] = [];
  const execution = executor.start(
    { workDir: dir, datasetName: null, datasetParts: [], mounts: [], env: {}, sessionName: 'kim/None/1', entry: 'main.py', args, gpuIds: [], limits },
    (stream, batch) => batch.forEach((l) => lines.push([stream, l])),
  );
  return { execution, lines };
}

export type MakeExecutor = (more?: Partial<LocalExecutorOptions>) => LocalExecutor;

export const make =
  (options: Partial<LocalExecutorOptions>): MakeExecutor =>
  (more = {}) =>
    new LocalExecutor({ python, runtimeDir: nsmlRuntimeDir(), bubblewrap: findBubblewrap(), stopGraceMs: 300, ...options, ...more });

/**
 * Every kind of executor a server can have here, by name. `uids`: a range of the test file's own
 * (files run in parallel, and two pools must not share a uid).
 */
export function executorKinds(uids: UidRange): Record<string, MakeExecutor> {
  return {
    sandboxed: make({}),
    plain: make({ bubblewrap: undefined }),
    // What a root server runs: the sandbox, entered as a uid of the session's own (CI runs as
    // root), with its limits polled (--no-cgroups) or kept by the kernel.
    ...(AS_ROOT ? { 'sandboxed, own uid, polled': make({ uids: new UidPool(uids) }) } : {}),
    ...('cgroups' in cgroups ? { 'sandboxed, own uid, cgroups': make({ uids: new UidPool(uids), cgroups: cgroups.cgroups }) } : {}),
  };
}
