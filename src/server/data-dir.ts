import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

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

  get uploadsRoot(): string {
    return join(this.root, 'uploads');
  }

  /** An upload's files, immutable once complete: the code of every session started from it. */
  upload(id: string): string {
    return join(this.uploadsRoot, id);
  }

  /** What sessions may see of a dataset (its `train/`): mounted read-only as DATASET_PATH. */
  datasetPublic(name: string): string {
    return join(this.root, 'datasets', name, 'public');
  }

  /** The hidden rest of a dataset (test inputs, labels, loaders): never mounted into training. */
  datasetPrivate(name: string): string {
    return join(this.root, 'datasets', name, 'private');
  }

  work(sessionId: number): string {
    return join(this.root, 'sessions', String(sessionId), 'work');
  }

  session(sessionId: number): string {
    return join(this.root, 'sessions', String(sessionId));
  }

  create(): void {
    for (const dir of [this.root, this.logs, this.uploadsRoot, join(this.root, 'datasets'), join(this.root, 'sessions')]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
  }
}
