import { KhdError } from '../../protocol/errors.js';
import type { CheckpointInfo, ForkRequest } from '../../protocol/types.js';
import type { NewSession, SessionRow } from '../store/sessions.js';

/** `--pause 1 --iteration CKPT`: what a fork adds after its code's arguments. */
const RESERVED_FORK_ARGS = 4;

/**
 * What `khd fork` starts from `source`: a training session of the same upload, entry, dataset
 * and environment, continuing from one of its `saved` checkpoints (default: the one saved last).
 * Its code gets NSML's reserved `--pause 1 --iteration CKPT` after its arguments, and
 * `nsml.paused()` loads the checkpoint (KHD_FORK_CHECKPOINT) and returns. Everything but the
 * owner and the GPUs, which the session service decides.
 */
export function forkOf(source: SessionRow, req: ForkRequest, saved: CheckpointInfo[]): Omit<NewSession, 'userId' | 'user' | 'gpus'> {
  if (source.type !== 'normal') throw new KhdError('KHD_BAD_REQUEST', `session ${source.name} is a ${source.type} session: fork a training session`);
  if (saved.length === 0) throw new KhdError('KHD_CHECKPOINT_NOT_FOUND', `session ${source.name} has no checkpoint to continue from: its code saves them with nsml.save`);
  // In name order (1, 2, 10): of those saved in the same millisecond, the last in that order counts as the latest.
  const checkpoint = req.checkpoint ?? saved.reduce((a, b) => (b.lastModified >= a.lastModified ? b : a)).checkpoint;
  if (!saved.some((c) => c.checkpoint === checkpoint)) {
    throw new KhdError('KHD_CHECKPOINT_NOT_FOUND', `session ${source.name} has no checkpoint '${checkpoint}': khd model ls ${source.name} lists ${saved.slice(0, 5).map((c) => c.checkpoint).join(', ')}`);
  }
  // A fork of a fork continues with the code's own arguments, not the reserved ones it was given.
  const args = req.args ?? (source.forkOf ? source.args.slice(0, -RESERVED_FORK_ARGS) : source.args);
  return {
    datasetId: source.datasetId, dataset: source.dataset, type: 'normal', uploadId: source.uploadId, entry: source.entry,
    args: [...args, '--pause', '1', '--iteration', checkpoint], cpus: req.cpus ?? source.cpus, memory: req.memory ?? source.memory,
    shmSize: source.shmSize, memo: req.memo ?? `fork of ${source.name} ${checkpoint}`, env: source.env, forkOf: { session: source.name, checkpoint },
  };
}
