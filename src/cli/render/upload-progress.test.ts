import { describe, expect, it } from 'vitest';
import { testIO } from '../test-io.js';
import { createUploadProgress, planLine } from './upload-progress.js';

const event = (index: number, bytesDone: number) => ({ path: `f${index}.py`, size: 100, index, count: 4, bytesDone, bytesTotal: 400 });

describe('upload progress', () => {
  it('prints the plan and NSML’s per-file lines when stderr is not a terminal', async () => {
    const io = testIO();
    const progress = await createUploadProgress(io);
    progress.plan({ files: 1204, bytes: 312 * 1024 ** 2, sendFiles: 4, sendBytes: 400 });
    for (const i of [1, 2]) {
      progress.fileProgress({ ...event(i, (i - 1) * 100), read: 0 });
      progress.fileSent(event(i, i * 100));
    }
    progress.done();
    expect(io.stderrText()).toBe(
      'file integrity check - start\nfile integrity check - done\n' +
        '1,204 files, 312 MB: 4 files (400 B) to send, the rest already on the server\n' +
        'f1.py 100 B - start\nf1.py 100 B - done (1/4 25.00%) (100 B/400 B 25.00%)\n' +
        'f2.py 100 B - start\nf2.py 100 B - done (2/4 50.00%) (200 B/400 B 50.00%)\n',
    );
    expect(io.stdoutText()).toBe('');
  });

  it('says so when nothing needs sending, and when everything does', () => {
    expect(planLine({ files: 3, bytes: 3000, sendFiles: 0, sendBytes: 0 })).toBe('3 files, 2.9 KB: all already on the server, nothing to send');
    expect(planLine({ files: 1, bytes: 10, sendFiles: 1, sendBytes: 10 })).toBe('1 file, 10 B: all to send');
  });

  it('draws a live bar with bytes, files, rate and ETA on a terminal', async () => {
    const io = testIO({ tty: true });
    const chunks: string[] = [];
    io.stderr.on('data', (c: Buffer) => chunks.push(c.toString()));
    let now = 0;
    const progress = await createUploadProgress(io, { now: () => now });
    progress.plan({ files: 4, bytes: 400, sendFiles: 4, sendBytes: 400 });
    now = 2000;
    progress.fileSent(event(3, 300));
    await new Promise((r) => setTimeout(r, 150));
    progress.done();
    const drawn = chunks.join('');
    expect(drawn).toContain('4 files, 400 B: all to send');
    expect(drawn).toContain('Uploading ██████████████████░░░░░░ 75%  300 B / 400 B  3/4 files  150 B/s  ETA 1 s');
    expect(io.stdoutText()).toBe('');
  });

  it('writes the lines, not a bar, to a terminal of no width (a pty nobody sized)', async () => {
    const io = testIO({ tty: true });
    Object.assign(io.stderr, { columns: 0 });
    const progress = await createUploadProgress(io);
    progress.plan({ files: 1, bytes: 10, sendFiles: 1, sendBytes: 10 });
    progress.done();
    expect(io.stderrText()).toBe('file integrity check - start\nfile integrity check - done\n1 file, 10 B: all to send\n');
  });

  it('moves the bar by bytes inside one large file, before it is done', async () => {
    const io = testIO({ tty: true });
    const chunks: string[] = [];
    io.stderr.on('data', (c: Buffer) => chunks.push(c.toString()));
    let now = 0;
    const progress = await createUploadProgress(io, { now: () => now });
    const big = { path: 'weights.bin', size: 200 * 1024 ** 2, index: 1, count: 1, bytesTotal: 200 * 1024 ** 2 };
    progress.plan({ files: 1, bytes: big.size, sendFiles: 1, sendBytes: big.size });
    progress.fileProgress({ ...big, read: 0, bytesDone: 0 });
    now = 4000;
    progress.fileProgress({ ...big, read: 100 * 1024 ** 2, bytesDone: 100 * 1024 ** 2 });
    // Drawn at the spinner's next frame, whenever that comes.
    await expect.poll(() => chunks.join('')).toContain('Uploading ████████████░░░░░░░░░░░░ 50%  100 MB / 200 MB  0/1 files  25 MB/s  ETA 4 s');
    progress.done();
  });

  it('emits JSON events on stdout for tools', async () => {
    const io = testIO();
    const progress = await createUploadProgress(io, { json: true });
    progress.plan({ files: 4, bytes: 400, sendFiles: 1, sendBytes: 100 });
    progress.fileSent(event(1, 100));
    progress.uploaded();
    const events = io.stdoutText().trim().split('\n').map((l) => JSON.parse(l));
    expect(events).toEqual([
      { event: 'plan', files: 4, bytes: 400, sendFiles: 1, sendBytes: 100 },
      { event: 'file', ...event(1, 100) },
      { event: 'uploaded' },
    ]);
    expect(io.stderrText()).toBe('');
  });

  it('joins the lines of one turn of the event loop into one write, and writes them all', async () => {
    const io = testIO();
    const writes: string[] = [];
    const err = io.err;
    io.err = (text) => {
      writes.push(text);
      err(text);
    };
    const progress = await createUploadProgress(io);
    for (let i = 1; i <= 4; i++) progress.fileSent(event(i, i * 100));
    expect(io.stderrText()).toBe('');
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(1);
    // The integrity check's start, then the four files.
    expect(io.stderrText().split('\n').filter(Boolean)).toHaveLength(5);
  });
});
