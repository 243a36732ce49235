import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testSessionUidsFlag } from './uids.js';

export const KHD_BIN = fileURLToPath(new URL('../../bin/khd.js', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `khd` binary to its end. */
export function khd(args: string[], opts: { env: NodeJS.ProcessEnv; cwd?: string; input?: string }): Promise<Run> {
  const child = spawn(process.execPath, [KHD_BIN, ...args], { env: opts.env, cwd: opts.cwd ?? REPO_ROOT });
  return collect(child, opts.input);
}

export function collect(child: ChildProcess, input?: string): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => (stdout += c));
  child.stderr!.on('data', (c) => (stderr += c));
  child.stdin!.end(input ?? '');
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** Resolves when `text` has appeared on the stream, with everything read so far. */
export function waitForOutput(stream: NodeJS.ReadableStream, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; saw: ${seen}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolve(seen);
      }
    };
    stream.on('data', onData);
  });
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  stderr: string;
}

/** `khd server` as a real process on a free loopback port. */
export async function spawnServer(dataDir: string, env: NodeJS.ProcessEnv, extra: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [KHD_BIN, 'server', '--port', '0', '--data-dir', dataDir, ...testSessionUidsFlag(), ...extra], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const out = await waitForOutput(child.stdout!, /listening on (\S+)\n/);
  const url = /listening on (\S+)\n/.exec(out)![1]!;
  return {
    child,
    url,
    get stderr() {
      return stderr;
    },
  };
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}
