import { execFile } from 'node:child_process';

/**
 * Bytes on disk under `paths` as `du` counts them: allocated blocks (a sparse file costs what it
 * holds), each hard-linked file once. `du` runs as a child, so a session with many files does
 * not stall the server's event loop. A path that does not exist counts 0.
 */
export function diskUse(paths: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('du', ['-s', '-c', '-B1', '--', ...paths], { maxBuffer: 1024 * 1024 }, (err, stdout) => {
      // du exits 1 for a path it cannot read or that vanished, and still prints the total.
      const total = /^(\d+)\s+total$/m.exec(stdout);
      if (total) resolve(Number(total[1]));
      else reject(err ?? new Error(`du printed no total: ${stdout.slice(0, 200)}`));
    });
  });
}

/**
 * Measures the disk a session's writable folders use every `everyMs`, and calls `onOver` once
 * when it passes `maxBytes`. A measurement still running when the next is due is not doubled; a
 * failing one is reported once, not every tick. Returns the function that stops watching.
 */
export function watchDisk(
  paths: string[],
  maxBytes: number,
  everyMs: number,
  onOver: (used: number) => void,
  onError: (err: Error) => void,
  measure: (paths: string[]) => Promise<number> = diskUse,
): () => void {
  let busy = false;
  let done = false;
  let reported = false;
  const stop = () => {
    done = true;
    clearInterval(timer);
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    measure(paths).then(
      (used) => {
        busy = false;
        if (done || used <= maxBytes) return;
        stop();
        onOver(used);
      },
      (err: Error) => {
        busy = false;
        if (!done && !reported) onError(err);
        reported = true;
      },
    );
  }, everyMs);
  timer.unref();
  return stop;
}
