import { formatSize } from '../../protocol/sizes.js';
import type { FileProgress, FileSent } from '../../pack/tar-stream.js';
import type { IOStreams } from '../iostreams.js';

/** What the upload knows once the server has answered the manifest. */
export interface UploadPlan {
  files: number;
  bytes: number;
  sendFiles: number;
  sendBytes: number;
}

/** The events of an upload, rendered three ways: NSML lines, a live bar, JSON for tools. */
export interface UploadProgress {
  hashing(done: number, total: number): void;
  plan(p: UploadPlan): void;
  /** A file starts (`read` 0), and how far a large one has been read. */
  fileProgress(e: FileProgress): void;
  fileSent(e: FileSent): void;
  retry(attempt: number, delayMs: number, reason: string): void;
  /** Everything is on the server and laid out; the session comes next. */
  uploaded(): void;
  done(): void;
}

const BAR_WIDTH = 24;
/** How often the terminal's bar is redrawn while bytes of one file go out. */
const REDRAW_MS = 100;
const pct = (part: number, whole: number) => `${(whole > 0 ? (part / whole) * 100 : 100).toFixed(2)}%`;
const count = (n: number) => n.toLocaleString('en-US');

/** `1,204 files, 312 MB: 3 files (4.1 MB) to send, the rest already on the server` */
export function planLine(p: UploadPlan): string {
  const head = `${count(p.files)} file${p.files === 1 ? '' : 's'}, ${formatSize(p.bytes)}`;
  if (p.sendFiles === 0) return `${head}: all already on the server, nothing to send`;
  if (p.sendFiles === p.files) return `${head}: all to send`;
  return `${head}: ${count(p.sendFiles)} file${p.sendFiles === 1 ? '' : 's'} (${formatSize(p.sendBytes)}) to send, the rest already on the server`;
}

export async function createUploadProgress(io: IOStreams, options: { json?: boolean; now?: () => number } = {}): Promise<UploadProgress> {
  if (options.json) return jsonProgress(io);
  // A terminal of no width (a pty nobody sized: `script` without a terminal, some CI runners) gets
  // the lines: ora's redraw would divide by its 0 columns and clear lines without end.
  if (!io.stderrIsTTY || !(io.stderr as { columns?: number }).columns) return lineProgress(io);
  return barProgress(io, options.now ?? Date.now);
}

/**
 * Joins the lines written in one turn of the event loop into one write: thousands of files
 * are sent per second, and a write per line costs a system call each on a pipe.
 */
function batched(write: (text: string) => void): { write(text: string): void; flush(): void } {
  let pending = '';
  const flush = () => {
    if (pending === '') return;
    const text = pending;
    pending = '';
    write(text);
  };
  return {
    write(text) {
      if (pending === '') setImmediate(flush);
      pending += text;
      if (pending.length >= 64 * 1024) flush();
    },
    flush,
  };
}

function jsonProgress(io: IOStreams): UploadProgress {
  const out = batched((t) => io.out(t));
  const emit = (event: string, data: object) => out.write(`${JSON.stringify({ event, ...data })}\n`);
  return {
    hashing: () => {},
    plan: (p) => emit('plan', p),
    fileProgress: () => {},
    fileSent: (e) => emit('file', e),
    retry: (attempt, delayMs, reason) => emit('retry', { attempt, delayMs, reason }),
    uploaded: () => {
      emit('uploaded', {});
      out.flush();
    },
    done: () => out.flush(),
  };
}

/**
 * NSML's line protocol, for logs and CI: `file integrity check - start/done` around the hashing,
 * the plan, then `NAME SIZE - start` and `NAME SIZE - done (i/n %) (bytes/total %)` for each file
 * actually sent.
 */
function lineProgress(io: IOStreams): UploadProgress {
  const err = batched((t) => io.err(t));
  err.write('file integrity check - start\n');
  return {
    hashing: () => {},
    plan: (p) => err.write(`file integrity check - done\n${planLine(p)}\n`),
    fileProgress: (e) => {
      if (e.read === 0) err.write(`${e.path} ${formatSize(e.size)} - start\n`);
    },
    fileSent: (e) => {
      err.write(
        `${e.path} ${formatSize(e.size)} - done (${e.index}/${e.count} ${pct(e.index, e.count)}) ` +
          `(${formatSize(e.bytesDone)}/${formatSize(e.bytesTotal)} ${pct(e.bytesDone, e.bytesTotal)})\n`,
      );
    },
    retry: (attempt, delayMs, reason) => err.write(`upload interrupted (${reason}); retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt})\n`),
    uploaded: () => err.flush(),
    done: () => err.flush(),
  };
}

async function barProgress(io: IOStreams, now: () => number): Promise<UploadProgress> {
  const { default: ora } = await import('ora');
  // No colour where the user asked for none (NO_COLOR), the spinner's included.
  const spinner = ora({ stream: io.stderr, text: 'Reading the project…', isEnabled: true, color: io.colorErr ? 'cyan' : false }).start();
  let started = 0;
  let drawn = -Infinity;
  let filesDone = 0;
  /** The bar by bytes, also inside a large file: rate and ETA from the bytes read since the send began. */
  const draw = (bytesDone: number, bytesTotal: number, files: number, count: number) => {
    const ratio = bytesTotal > 0 ? bytesDone / bytesTotal : files / count;
    const filled = Math.round(ratio * BAR_WIDTH);
    const seconds = Math.max((now() - started) / 1000, 0.001);
    const rate = bytesDone / seconds;
    const eta = rate > 0 ? Math.ceil((bytesTotal - bytesDone) / rate) : 0;
    spinner.text =
      `Uploading ${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)} ${(ratio * 100).toFixed(0)}%  ` +
      `${formatSize(bytesDone)} / ${formatSize(bytesTotal)}  ${files}/${count} files  ${formatSize(rate)}/s  ETA ${eta} s`;
  };
  return {
    hashing: (done, total) => {
      spinner.text = `Hashing ${count(done)}/${count(total)} files…`;
    },
    plan: (p) => {
      spinner.stopAndPersist({ symbol: '•', text: planLine(p) });
      if (p.sendFiles > 0) spinner.start('Uploading…');
      started = now();
    },
    fileProgress: (e) => {
      if (e.read === 0 || now() - drawn < REDRAW_MS) return;
      drawn = now();
      draw(e.bytesDone, e.bytesTotal, filesDone, e.count);
    },
    fileSent: (e) => {
      filesDone = e.index;
      draw(e.bytesDone, e.bytesTotal, e.index, e.count);
    },
    retry: (attempt, delayMs, reason) => {
      spinner.text = `Upload interrupted (${reason}); retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt})`;
    },
    uploaded: () => {},
    done: () => spinner.stop(),
  };
}
