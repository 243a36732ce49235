import { Worker } from 'node:worker_threads';
import type { FileStamp } from './hash-cache.js';

/**
 * The worker's program: each file opened (non-blocking, so a FIFO swapped in cannot hang it),
 * stamped by its own handle's stat, read in 1 MiB pieces and hashed, with synchronous calls.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { closeSync, constants, fstatSync, openSync, readSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buf = Buffer.allocUnsafe(1024 * 1024);
parentPort.on('message', ({ id, path }) => {
  let fd;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile()) throw Object.assign(new Error('is no longer a regular file'), { notFile: true });
    const hash = createHash('sha256');
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
    parentPort.postMessage({ id, sha256: hash.digest('hex'), stamp: { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev } });
  } catch (err) {
    parentPort.postMessage({ id, error: err.message, code: err.code, notFile: err.notFile === true });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
});
`;

/**
 * Hashes large files on a second thread while the main one hashes the small ones: on a first
 * upload the server has nothing to do until the manifest arrives, so the CLI may use two cores.
 */
export class HashWorker {
  private readonly worker = new Worker(WORKER_SOURCE, { eval: true });
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (r: { sha256: string; stamp: FileStamp }) => void; reject: (err: Error) => void }>();

  constructor() {
    this.worker.on('message', (m: { id: number; sha256?: string; stamp?: FileStamp; error?: string; code?: string; notFile?: boolean }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error === undefined) w?.resolve({ sha256: m.sha256!, stamp: m.stamp! });
      else w?.reject(Object.assign(new Error(m.error), { code: m.code, notFile: m.notFile }));
    });
    this.worker.on('error', (err) => this.failAll(err));
  }

  hash(path: string): Promise<{ sha256: string; stamp: FileStamp }> {
    const id = ++this.nextId;
    this.worker.postMessage({ id, path });
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  async close(): Promise<void> {
    this.failAll(new Error('the hashing thread was stopped'));
    await this.worker.terminate();
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
