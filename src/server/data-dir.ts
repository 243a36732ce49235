import { mkdirSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const EVENTS_FILE = 'events.jsonl';
export const STAGED_CHECKPOINT_PREFIX = '.submit-';

/**
 * The server's data dir. Only the server reads it; sessions see their own work folder and the
 * public part of their dataset, mounted elsewhere by the sandbox.
 */
export class DataDir {
  constructor(readonly root: string) {}

  get database(): string {
    return join(this.root, 'khd.db');
  }

  get logs(): string {
    return join(this.root, 'logs');
  }

  /** File contents by sha256, stored once: what uploads are laid out from. */
  get blobs(): string {
    return join(this.root, 'blobs');
  }

  /**
   * A laid-out code tree, named by the hash of its manifest and shared by every upload of the
   * same tree: immutable, the source of each session's work folder. Never mounted anywhere.
   */
  tree(key: string): string {
    return join(this.root, 'trees', key);
  }

  /** Trees and datasets half laid out when the server stopped (layOut's `.partial-*` staging). */
  async removePartialTrees(): Promise<void> {
    const parents = [this.treesRoot, ...(await readdir(join(this.root, 'datasets')).catch(() => [])).map((d) => join(this.root, 'datasets', d))];
    for (const parent of parents) {
      for (const name of await readdir(parent).catch(() => [])) {
        if (name.startsWith('.partial-')) await rm(join(parent, name), { recursive: true, force: true });
      }
    }
  }

  /** Package layers: a venv per (environment, requirements), built once, mounted read-only. */
  get envs(): string {
    return join(this.root, 'envs');
  }

  get treesRoot(): string {
    return join(this.root, 'trees');
  }

  /** What sessions may see of a dataset (its `train/`): mounted read-only as DATASET_PATH. */
  datasetPublic(name: string): string {
    return join(this.root, 'datasets', name, 'public');
  }

  /** The hidden rest of a dataset (test inputs without labels, loaders): never mounted into training. */
  datasetPrivate(name: string): string {
    return join(this.root, 'datasets', name, 'private');
  }

  /** Every user's checkpoints, as USER/DATASET/N/CHECKPOINT. */
  get checkpointsRoot(): string {
    return join(this.root, 'checkpoints');
  }

  /** A dataset's ground truth, as KIND/NAME (test/test_label): the scorer's alone. */
  datasetLabels(name: string): string {
    return join(this.root, 'datasets', name, 'labels');
  }

  /** A user's checkpoints, as DATASET/N/CHECKPOINT: mounted read-only into the team's sessions for nsml.load(session=). */
  userCheckpoints(user: string): string {
    return join(this.checkpointsRoot, user);
  }

  /** One session's checkpoints, outside its work folder: mounted writable for nsml.save. */
  checkpoints(user: string, datasetKey: string, number: number): string {
    return join(this.userCheckpoints(user), datasetKey, String(number));
  }

  /** Where the nsml runtime writes its events (reports, saves, submit stages). */
  state(sessionId: number): string {
    return join(this.session(sessionId), 'state');
  }

  events(sessionId: number): string {
    return join(this.state(sessionId), EVENTS_FILE);
  }

  /** A submit's predictions, written by the session, read by the scorer. */
  submitOutput(sessionId: number): string {
    return join(this.session(sessionId), 'out');
  }

  /** The server's copy of the checkpoint a submit session evaluates (never the session's own folder). */
  submitCheckpoint(sessionId: number): string {
    return join(this.session(sessionId), 'checkpoint');
  }

  /** A submit's checkpoint copy while the submit session is being created. */
  stagedCheckpoint(submitId: number): string {
    return join(this.sessionsRoot, `${STAGED_CHECKPOINT_PREFIX}${submitId}`);
  }

  /** The server's copy of a submit's predictions: what the scorer reads. */
  scoring(sessionId: number): string {
    return join(this.session(sessionId), 'scoring');
  }

  work(sessionId: number): string {
    return join(this.session(sessionId), 'work');
  }

  session(sessionId: number): string {
    return join(this.sessionsRoot, String(sessionId));
  }

  get sessionsRoot(): string {
    return join(this.root, 'sessions');
  }

  create(): void {
    for (const dir of [this.root, this.logs, this.treesRoot, join(this.root, 'datasets'), this.sessionsRoot, join(this.root, 'checkpoints'), this.envs]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
  }
}
