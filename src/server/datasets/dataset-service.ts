import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { layOut } from '../uploads/trees.js';
import { join } from 'node:path';
import { KhdError } from '../../protocol/errors.js';
import { checkName } from '../../protocol/session-name.js';
import type { DatasetOptions, PushDatasetRequest, PushDatasetResponse } from '../../protocol/types.js';
import { DEFAULT_INFER_TIMEOUT_MS, DEFAULT_MODEL_SIZE_LIMIT, DEFAULT_PAUSED_TIMEOUT_MS, DEFAULT_SUBMIT_INTERVAL_MS } from '../config.js';
import type { DataDir } from '../data-dir.js';
import type { UserRow } from '../store/accounts.js';
import type { DatasetRow, DatasetStore } from '../store/datasets.js';
import type { UploadStore } from '../store/uploads.js';
import { DEFAULT_LABEL, planDataset, TEST_KINDS, type PlannedDataset } from './dataset-layout.js';

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
  modelPull: true,
  submitFrom: null,
  submitUntil: null,
  labels: [],
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

  async push(user: UserRow, req: PushDatasetRequest): Promise<{ row: DatasetRow; layout: PushDatasetResponse['layout'] }> {
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
    const { name: _name, upload: _upload, visible, ...given } = req;
    const options = { ...DEFAULT_DATASET_OPTIONS, ...given };
    // Refused (a label left visible, a metric without labels) before the upload is used up.
    const plan = planDataset(upload.files, { labels: options.labels, visible: visible ?? [] }, options);
    if (!this.uploads.transition(upload.id, 'ready', 'used')) {
      throw new KhdError('KHD_UPLOAD_STATE', `upload '${upload.id}' is ${upload.state}, not ready: push again`);
    }
    await this.layOut(name, plan);
    const size = upload.files.reduce((sum, f) => sum + f.size, 0);
    const row = this.datasets.insert(name, options, size, upload.files.length);
    this.uploads.delete(upload.id);
    return { row, layout: plan.layout };
  }

  /**
   * `train/` goes to the public side; test/, test_submit/ and the loaders to the private one;
   * the labels to a folder of their own, which only the scorer's sandbox mounts.
   */
  private async layOut(name: string, plan: PlannedDataset): Promise<void> {
    const pub = this.dataDir.datasetPublic(name);
    const top = join(pub, '..');
    await rm(top, { recursive: true, force: true });
    await mkdir(top, { recursive: true, mode: 0o755 });
    await layOut(pub, plan.public, this.contentPath);
    await layOut(this.dataDir.datasetPrivate(name), plan.private, this.contentPath);
    await layOut(this.dataDir.datasetLabels(name), plan.labels, this.contentPath);
    await chmod(this.dataDir.datasetPrivate(name), 0o700);
    await chmod(this.dataDir.datasetLabels(name), 0o700);
  }

  /**
   * Datasets pushed before labels had a folder of their own kept them in the private folder:
   * NSML's test/test_label there was mounted into every submit. They are moved out at start.
   */
  async recover(): Promise<void> {
    for (const d of this.datasets.list(true)) {
      const labels = this.dataDir.datasetLabels(d.name);
      if (existsSync(labels)) continue;
      const priv = this.dataDir.datasetPrivate(d.name);
      // Kept across a stop mid-way: what it holds was already moved out of the private folder.
      const staging = `${labels}.partial`;
      for (const kind of TEST_KINDS) {
        const into = join(staging, kind);
        await mkdir(into, { recursive: true, mode: 0o700 });
        for (const from of [join(priv, kind, DEFAULT_LABEL), join(priv, `${kind}_label`)]) {
          if (existsSync(from) && !existsSync(join(into, DEFAULT_LABEL))) await rename(from, join(into, DEFAULT_LABEL));
        }
      }
      await chmod(staging, 0o700);
      await rename(staging, labels);
    }
  }
}
