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
 * Threads writing at once. Creating a file costs ~30 µs here, and 250 µs or more for minutes
 * after mass deletions (ext4 looking for free inodes); two threads wrote 5,000 files in 0.87 s
 * where one took 1.46 s then, and 0.27 s against 0.40 s otherwise.
 */
const THREADS = 2;

/**
 * Writes small contents on threads of their own: creating 5,000 files was 0.5 s of the server's
 * main thread, during which no other request was answered. The main thread parses and
 * verifies; these threads only write what was verified (a batch each in turn). Started on first
 * use; they never hold the process open.
 */
export class BlobWriter {
  private readonly workers: (Worker | undefined)[] = new Array(THREADS).fill(undefined);
  private turn = 0;
  private nextId = 0;
  private queued: Job[] = [];
  private arena = new ArrayBuffer(0);
  /** Arenas the threads gave back, to fill again. */
  private readonly spare: ArrayBuffer[] = [];
  private used = 0;
  private flushing = false;
  /** Each write's promise, and the thread it went to. */
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void; thread: number }>();

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
    const thread = this.turn;
    if (this.queued.length >= BATCH_FILES) this.flush();
    else if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject, thread }));
  }

  /** Posts the queued jobs with their arena, handed over whole, to the next thread in turn; the next write starts a new batch. */
  private flush(): void {
    this.flushing = false;
    if (this.queued.length === 0) return;
    const jobs = this.queued;
    const arena = this.arena;
    this.queued = [];
    this.arena = new ArrayBuffer(0);
    this.used = 0;
    const thread = this.turn;
    this.turn = (this.turn + 1) % THREADS;
    this.started(thread).postMessage({ arena, jobs }, [arena]);
  }

  private started(thread: number): Worker {
    const running = this.workers[thread];
    if (running) return running;
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
    // A thread that dies fails what it held; the next batch for it starts a new one.
    worker.on('error', (err) => this.fail(thread, worker, err));
    worker.on('exit', (code) => this.fail(thread, worker, new Error(`the content writer stopped (exit code ${code})`)));
    this.workers[thread] = worker;
    return worker;
  }

  private fail(thread: number, worker: Worker, err: Error): void {
    if (this.workers[thread] !== worker) return;
    this.workers[thread] = undefined;
    for (const [id, w] of this.waiting) {
      if (w.thread !== thread) continue;
      this.waiting.delete(id);
      w.reject(err);
    }
  }

  /** Stops the threads; writes still queued in them fail (their uploads are refused, nothing recorded). */
  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(async (worker, thread) => {
        if (!worker) return;
        this.fail(thread, worker, new Error('the server is closing'));
        await worker.terminate();
      }),
    );
  }
}
