import { Worker } from 'node:worker_threads';

/**
 * The worker's whole program: each job's bytes written to a new file at its place, never into
 * an existing one (a tree may link it). A file already there has no record (the caller asked
 * only for contents it lacks): a crash's half-written leftover, or the same content just
 * written for another upload; it is replaced whole, through a temporary file and a rename (a
 * new inode). Synchronous calls, in order, a batch per message; one answer per batch.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { renameSync, rmSync, writeFileSync } = require('node:fs');
parentPort.on('message', (jobs) => {
  const answers = [];
  for (const job of jobs) {
    const data = new Uint8Array(job.data);
    try {
      try {
        writeFileSync(job.dest, data, { mode: ${0o644}, flag: 'wx' });
      } catch (err) {
        if (err.code !== 'EEXIST') throw err;
        writeFileSync(job.tmp, data, { mode: ${0o644}, flag: 'wx' });
        renameSync(job.tmp, job.dest);
      }
      answers.push({ id: job.id });
    } catch (err) {
      try { rmSync(job.tmp, { force: true }); } catch {}
      answers.push({ id: job.id, error: err.message });
    }
  }
  parentPort.postMessage(answers);
});
`;

interface Job {
  id: number;
  tmp: string;
  dest: string;
  data: ArrayBuffer;
}

/** Jobs posted to the worker at once, at most: a message per file cost more than the write. */
const BATCH_FILES = 64;

/**
 * Writes small contents on a thread of their own: creating a file costs ~80–100 µs of system
 * time here, 0.5 s of the server's main thread for a 5,000-file upload, during which no other
 * request was answered. The main thread parses and verifies; this thread only writes what was
 * verified. Started on first use; it never holds the process open.
 */
export class BlobWriter {
  private worker: Worker | undefined;
  private nextId = 0;
  private queued: Job[] = [];
  private flushing = false;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

  /**
   * Writes `data` as a new file at `dest` (through `tmp` when one is there already); resolves
   * once it is there. With `handOver`, `data`'s memory goes to the thread without a copy: the
   * caller owns all of it and uses no view of it again (handing over memory empties every view
   * of it, so a parser's chunk is never handed over: that emptied the parser's own buffer).
   */
  write(tmp: string, dest: string, data: Buffer, handOver = false): Promise<void> {
    let own: ArrayBuffer;
    if (handOver && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer) own = data.buffer;
    else {
      own = new ArrayBuffer(data.length);
      new Uint8Array(own).set(data);
    }
    const id = ++this.nextId;
    this.queued.push({ id, tmp, dest, data: own });
    if (this.queued.length >= BATCH_FILES) this.flush();
    else if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  private flush(): void {
    this.flushing = false;
    if (this.queued.length === 0) return;
    const jobs = this.queued;
    this.queued = [];
    this.started().postMessage(jobs, jobs.map((j) => j.data));
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', (answers: { id: number; error?: string }[]) => {
      for (const a of answers) {
        const w = this.waiting.get(a.id);
        this.waiting.delete(a.id);
        if (a.error === undefined) w?.resolve();
        else w?.reject(new Error(`storing a content failed: ${a.error}`));
      }
    });
    // A worker that dies fails what it held; the next write starts a new one.
    worker.on('error', (err) => this.fail(worker, err));
    worker.on('exit', (code) => this.fail(worker, new Error(`the content writer stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private fail(worker: Worker, err: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  /** Stops the worker; writes still queued in it fail (their uploads are refused, nothing recorded). */
  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.fail(worker, new Error('the server is closing'));
    await worker.terminate();
  }
}
