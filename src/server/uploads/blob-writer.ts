import { Worker } from 'node:worker_threads';
import { placeContent } from './place.js';
import type { Placement } from './trees.js';

/**
 * The worker's whole program: each job's bytes (a piece of its batch's arena) written to a new
 * file at its place, never into an existing one (a tree may link it). A file already there has
 * no record (the caller asked only for contents it lacks): a crash's half-written leftover, or
 * the same content just written for another upload; it is replaced whole, through a temporary
 * file and a rename (a new inode). Synchronous calls, in order, a batch per message; one answer
 * per batch.
 */
const WORKER_SOURCE = `
const fs = require('node:fs');
const { parentPort } = require('node:worker_threads');
const placeContent = ${placeContent.toString()};
parentPort.on('message', ({ arena, jobs }) => {
  const answers = [];
  for (const job of jobs) {
    const data = new Uint8Array(arena, job.at, job.length);
    try {
      try {
        fs.writeFileSync(job.dest, data, { mode: ${0o644}, flag: 'wx' });
      } catch (err) {
        if (err.code !== 'EEXIST') throw err;
        fs.writeFileSync(job.tmp, data, { mode: ${0o644}, flag: 'wx' });
        fs.renameSync(job.tmp, job.dest);
      }
    } catch (err) {
      try { fs.rmSync(job.tmp, { force: true }); } catch {}
      answers.push({ id: job.id, error: err.message });
      continue;
    }
    try {
      for (const p of job.placed) placeContent(fs, job.dest, p.file, p.executable);
      answers.push({ id: job.id });
    } catch (err) {
      answers.push({ id: job.id, error: 'placing it in the tree: ' + err.message });
    }
  }
  // The arena goes back, to be filled again: fresh memory costs a page fault per 4 KiB.
  parentPort.postMessage({ answers, arena }, [arena]);
});
`;

interface Job {
  id: number;
  tmp: string;
  dest: string;
  placed: Placement[];
  /** Where its bytes are in the batch's arena. */
  at: number;
  length: number;
}

/** Jobs posted to the worker at once, at most: a message per file cost more than the write. */
const BATCH_FILES = 64;
/**
 * A batch's bytes, copied into one buffer handed over whole (handing over each content's own
 * cost ~25 µs apiece). Not zeroed: only what was copied in is ever written out.
 */
const ARENA_BYTES = 1024 * 1024;
/** Arenas kept for reuse, at most: the writer rarely holds more than a few batches. */
const SPARE_ARENAS = 8;

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
  private arena = new ArrayBuffer(0);
  /** Arenas the thread gave back, to fill again. */
  private readonly spare: ArrayBuffer[] = [];
  private used = 0;
  private flushing = false;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

  /**
   * Writes `data` as a new file at `dest` (through `tmp` when one is there already), then places
   * the tree files `placed` from it; resolves once all are there. `data` is copied before this
   * returns: the caller may reuse its memory.
   */
  write(tmp: string, dest: string, data: Uint8Array, placed: Placement[] = []): Promise<void> {
    if (this.used + data.length > this.arena.byteLength) {
      this.flush();
      this.arena = (data.length <= ARENA_BYTES && this.spare.pop()) || Buffer.allocUnsafeSlow(Math.max(ARENA_BYTES, data.length)).buffer as ArrayBuffer;
      this.used = 0;
    }
    new Uint8Array(this.arena, this.used, data.length).set(data);
    const id = ++this.nextId;
    this.queued.push({ id, tmp, dest, placed, at: this.used, length: data.length });
    this.used += data.length;
    if (this.queued.length >= BATCH_FILES) this.flush();
    else if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  /** Posts the queued jobs with their arena, handed over whole; the next write starts a new one. */
  private flush(): void {
    this.flushing = false;
    if (this.queued.length === 0) return;
    const jobs = this.queued;
    const arena = this.arena;
    this.queued = [];
    this.arena = new ArrayBuffer(0);
    this.used = 0;
    this.started().postMessage({ arena, jobs }, [arena]);
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', ({ answers, arena }: { answers: { id: number; error?: string }[]; arena: ArrayBuffer }) => {
      if (arena.byteLength === ARENA_BYTES && this.spare.length < SPARE_ARENAS) this.spare.push(arena);
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
