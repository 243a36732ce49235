import { chmod, mkdir, rm } from 'node:fs/promises';
import { layOut } from '../uploads/trees.js';
import { join } from 'node:path';
import { KhdError } from '../../protocol/errors.js';
import { checkName } from '../../protocol/session-name.js';
import type { DatasetOptions, ManifestEntry, PushDatasetRequest } from '../../protocol/types.js';
import { DEFAULT_INFER_TIMEOUT_MS, DEFAULT_MODEL_SIZE_LIMIT, DEFAULT_PAUSED_TIMEOUT_MS, DEFAULT_SUBMIT_INTERVAL_MS } from '../config.js';
import type { DataDir } from '../data-dir.js';
import type { UserRow } from '../store/accounts.js';
import type { DatasetRow, DatasetStore } from '../store/datasets.js';
import type { UploadStore } from '../store/uploads.js';

export const DEFAULT_DATASET_OPTIONS: DatasetOptions = {
  leaderboard: false,
  metric: 'accuracy',
  order: 'desc',
  modelSizeLimit: DEFAULT_MODEL_SIZE_LIMIT,
  submitIntervalMs: DEFAULT_SUBMIT_INTERVAL_MS,
  private: false,
  description: '',
  pausedTimeoutMs: DEFAULT_PAUSED_TIMEOUT_MS,
  inferTimeoutMs: DEFAULT_INFER_TIMEOUT_MS,
  submitFrom: null,
  submitUntil: null,
};

/** Datasets: pushed once by an admin, split on disk into what training may see and the rest. */
export class DatasetService {
  constructor(
    private readonly datasets: DatasetStore,
    private readonly uploads: UploadStore,
    private readonly dataDir: DataDir,
    private readonly contentPath: (sha256: string) => string,
  ) {}

  list(user: UserRow): DatasetRow[] {
    return this.datasets.list(user.admin);
  }

  visible(user: UserRow, name: string): DatasetRow {
    return this.datasets.visible(name, user);
  }

  async push(user: UserRow, req: PushDatasetRequest): Promise<DatasetRow> {
    if (!user.admin) throw new KhdError('KHD_FORBIDDEN', 'only an admin can push datasets');
    const name = checkName('dataset', req.name);
    if (this.datasets.byName(name)) {
      throw new KhdError('KHD_DATASET_EXISTS', `dataset '${name}' already exists: push under a new name`);
    }
    const upload = this.uploads.get(req.upload);
    if (!upload || upload.userId !== user.id || upload.purpose !== 'dataset') {
      throw new KhdError('KHD_UPLOAD_NOT_FOUND', `upload '${req.upload}' does not exist`);
    }
    if (!upload.files.some((f) => f.path.startsWith('train/'))) {
      throw new KhdError('KHD_DATASET_INVALID', `the dataset folder has no files under train/: training sessions see only train/ (see docs/datasets.md)`);
    }
    if (!this.uploads.transition(upload.id, 'ready', 'used')) {
      throw new KhdError('KHD_UPLOAD_STATE', `upload '${upload.id}' is ${upload.state}, not ready: push again`);
    }
    await this.layOut(name, upload.files);
    const { name: _name, upload: _upload, ...given } = req;
    const options = { ...DEFAULT_DATASET_OPTIONS, ...given };
    const size = upload.files.reduce((sum, f) => sum + f.size, 0);
    const row = this.datasets.insert(name, options, size, upload.files.length);
    this.uploads.delete(upload.id);
    return row;
  }

  /** `train/` goes to the public side; everything else (test/, test_label, loaders) stays private. */
  private async layOut(name: string, files: ManifestEntry[]): Promise<void> {
    const pub = this.dataDir.datasetPublic(name);
    const priv = this.dataDir.datasetPrivate(name);
    await rm(join(pub, '..'), { recursive: true, force: true });
    await mkdir(join(pub, '..'), { recursive: true, mode: 0o755 });
    const isPublic = (f: ManifestEntry) => f.path.startsWith('train/');
    await layOut(pub, files.filter(isPublic), this.contentPath);
    await layOut(priv, files.filter((f) => !isPublic(f)), this.contentPath);
    await chmod(priv, 0o700);
  }
}
