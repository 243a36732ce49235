import { KhdError } from '../../protocol/errors.js';
import { formatSize } from '../../protocol/sizes.js';
import { didYouMean } from '../../protocol/suggest.js';
import { checkpointFolders, MAX_CHECKPOINT_FILES } from '../sessions/checkpoints.js';
import type { DatasetRow } from '../store/datasets.js';
import type { SessionRow } from '../store/sessions.js';
import { UntrustedFileError } from '../untrusted/session-files.js';
import { snapshot, treeSize } from '../untrusted/session-trees.js';

/**
 * The checkpoint a submit evaluates, copied out of the session's folder into one of the
 * server's. The training session wrote that folder and may still be writing it: a checkpoint
 * that is a link, or holds one (to the hidden labels, the database, another team's models),
 * would be mounted by the server, resolved as root. So the submit session gets a copy made
 * through the untrusted reader: files and folders only, no link followed or copied, at most the
 * dataset's model-size limit counted as read. `dest` null: the check alone, before the submit
 * takes the team's slot.
 */
export async function copyCheckpoint(
  checkpointsDir: string,
  source: SessionRow,
  checkpoint: string,
  dataset: DatasetRow,
  dest: string | null,
): Promise<void> {
  const what = `checkpoint '${checkpoint}'`;
  const notFound = async () => {
    const hint = didYouMean(checkpoint, (await checkpointFolders(checkpointsDir).catch(() => [])).map((f) => f.path));
    return new KhdError('KHD_CHECKPOINT_NOT_FOUND', `session ${source.name} has no checkpoint '${checkpoint}'${hint || `: see khd model ls ${source.name}`}`);
  };
  if (!checkpoint || checkpoint.startsWith('.') || checkpoint.includes('/')) throw await notFound();
  try {
    await snapshot(checkpointsDir, checkpoint, dest, { maxBytes: dataset.modelSizeLimit, maxEntries: MAX_CHECKPOINT_FILES, what });
  } catch (err) {
    if (!(err instanceof UntrustedFileError)) throw err;
    switch (err.why) {
      case 'missing':
      case 'not-directory':
        // Only the checkpoint itself: something vanishing or replaced inside it while it is copied is a change, not a miss.
        if (err.path === checkpoint || err.path === '.') throw await notFound();
        throw new KhdError('KHD_SUBMIT_INVALID', `${what} changed while it was copied: submit it again once nsml.save has finished`);
      case 'link':
        throw new KhdError('KHD_SUBMIT_INVALID', err.path === checkpoint ? `${what} is a symbolic link: a checkpoint is a folder that nsml.save wrote` : err.message);
      case 'too-large': {
        const size = await treeSize(checkpointsDir, checkpoint, { maxEntries: MAX_CHECKPOINT_FILES }).catch(() => undefined);
        const is = size?.complete && size.bytes > dataset.modelSizeLimit ? `is ${formatSize(size.bytes)}` : `is over ${formatSize(dataset.modelSizeLimit)}`;
        throw new KhdError('KHD_MODEL_TOO_LARGE', `${what} ${is}; ${dataset.name} allows at most ${formatSize(dataset.modelSizeLimit)}`);
      }
      default:
        throw new KhdError('KHD_SUBMIT_INVALID', err.message);
    }
  }
}
