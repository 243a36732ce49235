import { formatSize } from '../../protocol/sizes.js';
import type { FileSent } from '../../pack/tar-stream.js';
import type { IOStreams } from '../iostreams.js';

export interface UploadProgress {
  fileSent(e: FileSent): void;
  done(): void;
}

const BAR_WIDTH = 24;

/**
 * NSML's per-file lines when stderr is not a terminal (`main.py 365 B - done (2/3 66.67%)`),
 * a live bar on a terminal. Both on stderr, so stdout keeps only the session name.
 */
export async function createUploadProgress(io: IOStreams): Promise<UploadProgress> {
  if (!io.stderrIsTTY) {
    return {
      fileSent: (e) => {
        const pct = ((e.index / e.count) * 100).toFixed(2);
        io.err(`${e.path} ${formatSize(e.size)} - done (${e.index}/${e.count} ${pct}%) (${formatSize(e.bytesDone)} / ${formatSize(e.bytesTotal)})\n`);
      },
      done: () => {},
    };
  }
  const { default: ora } = await import('ora');
  const spinner = ora({ stream: io.stderr, text: 'Uploading…', isEnabled: true }).start();
  return {
    fileSent: (e) => {
      const ratio = e.bytesTotal > 0 ? e.bytesDone / e.bytesTotal : e.index / e.count;
      const filled = Math.round(ratio * BAR_WIDTH);
      const bar = '█'.repeat(filled) + '░'.repeat(BAR_WIDTH - filled);
      spinner.text = `Uploading ${bar} ${(ratio * 100).toFixed(0)}%  ${e.index}/${e.count} files  ${formatSize(e.bytesDone)} / ${formatSize(e.bytesTotal)}`;
    },
    done: () => spinner.stop(),
  };
}
