// khd exec enters a sandbox through its init as root: only the launcher's own child may count as
// that init, never a process the session made deeper down with namespaces of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sandboxInit } from './processes.js';

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  // Each in a process group of its own, killed whole: the fake inits go too.
  children.splice(0).forEach((c) => {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      // Gone.
    }
  });
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

/** A copy of sleep named bwrap, as a session could make one. */
function fakeBwrap(): string {
  const dir = mkdtempSync(join(tmpdir(), 'khd-fake-bwrap-'));
  dirs.push(dir);
  copyFileSync('/bin/sleep', join(dir, 'bwrap'));
  return join(dir, 'bwrap');
}

describe.runIf(process.getuid?.() === 0)('the sandbox init khd exec enters', () => {
  it('is the launcher’s own child at pid 1 of a pid namespace; a deeper one is never taken', async () => {
    const bwrap = fakeBwrap();
    // unshare forks its child into a new pid namespace, where it execs "bwrap": the shape of a real sandbox.
    const direct = spawn('unshare', ['--pid', '--fork', '--kill-child', bwrap, '60'], { stdio: 'ignore', detached: true });
    children.push(direct);
    await expect.poll(() => sandboxInit(direct.pid!)).toBeGreaterThan(0);
    // The same one level deeper (a session's own unshare under its code): not an init to enter.
    const deeper = spawn('sh', ['-c', `unshare --pid --fork --kill-child ${bwrap} 60; true`], { stdio: 'ignore', detached: true });
    children.push(deeper);
    const childOf = (pid: number) => Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0]) || 0;
    // Up: the fake init is there, one level below sh.
    await expect.poll(() => sandboxInit(childOf(deeper.pid!))).toBeGreaterThan(0);
    expect(sandboxInit(deeper.pid!)).toBeUndefined();
  });
});
