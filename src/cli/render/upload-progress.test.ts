import { describe, expect, it } from 'vitest';
import { testIO } from '../test-io.js';
import { createUploadProgress } from './upload-progress.js';

const event = (index: number, bytesDone: number) => ({ path: `f${index}.py`, size: 100, index, count: 4, bytesDone, bytesTotal: 400 });

describe('upload progress', () => {
  it('prints NSML’s per-file lines when stderr is not a terminal', async () => {
    const io = testIO();
    const progress = await createUploadProgress(io);
    progress.fileSent(event(1, 100));
    progress.fileSent(event(2, 200));
    progress.done();
    expect(io.stderrText()).toBe(
      'f1.py 100 B - done (1/4 25.00%) (100 B / 400 B)\nf2.py 100 B - done (2/4 50.00%) (200 B / 400 B)\n',
    );
    expect(io.stdoutText()).toBe('');
  });

  it('draws a live bar with bytes and files on a terminal', async () => {
    const io = testIO({ tty: true });
    const chunks: string[] = [];
    io.stderr.on('data', (c: Buffer) => chunks.push(c.toString()));
    const progress = await createUploadProgress(io);
    progress.fileSent(event(3, 300));
    await new Promise((r) => setTimeout(r, 150));
    progress.done();
    const drawn = chunks.join('');
    expect(drawn).toContain('Uploading ██████████████████░░░░░░ 75%  3/4 files  300 B / 400 B');
    expect(io.stdoutText()).toBe('');
  });
});
