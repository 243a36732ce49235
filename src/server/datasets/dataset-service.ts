import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { layOut } from '../uploads/trees.js';
import { join, relative } from 'node:path';
import { KhdError } from '../../protocol/errors.js';
import { checkName } from '../../protocol/session-name.js';
import type { DatasetChange, DatasetChangeRecord, DatasetFile, DatasetOptions, PushDatasetRequest, PushDatasetResponse } from '../../protocol/types.js';
import { DEFAULT_INFER_TIMEOUT_MS, DEFAULT_MODEL_SIZE_LIMIT, DEFAULT_PAUSED_TIMEOUT_MS, DEFAULT_SUBMIT_INTERVAL_MS } from '../config.js';
import type { DataDir } from '../data-dir.js';
import type { UserRow } from '../store/accounts.js';
import type { DatasetRow, DatasetStore } from '../store/datasets.js';
import { readyFiles, type UploadStore } from '../store/uploads.js';
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
    /** Whether the dataset's board has a score yet (its metric and order then stay). */
    private readonly scored: (datasetId: number) => boolean = () => false,
  ) {}

  /**
   * `khd dataset change` (admin): the description, the limits, the window, who sees it, whether
   * files may be taken out; the metric and order only while no counted submit has a score (the
   * board would mix two measures), and only to a metric the dataset can be scored by. Each change
   * is logged with who made it and the value before.
   */
  change(user: UserRow, name: string, change: DatasetChange): { row: DatasetRow; made: DatasetChangeRecord[] } {
    if (!user.admin) throw new KhdError('KHD_FORBIDDEN', 'only an admin can change datasets');
    const dataset = this.datasets.visible(name, user);
    const ranking = (change.metric !== undefined && change.metric !== dataset.metric) || (change.order !== undefined && change.order !== dataset.order);
    if (ranking && this.scored(dataset.id)) {
      throw new KhdError('KHD_DATASET_INVALID', `dataset ${name}'s board already has scores by ${dataset.metric} (${dataset.order}): its metric and order stay; push the dataset again under a new name to rank another way`);
    }
    if (change.metric === 'custom' && !existsSync(join(this.dataDir.datasetPrivate(name), 'evaluation.py'))) {
      throw new KhdError('KHD_DATASET_INVALID', `dataset ${name} has no evaluation.py: the custom metric runs it; push the dataset again with one`);
    }
    if (change.metric !== undefined && change.metric !== 'custom' && !existsSync(join(this.dataDir.datasetLabels(name), 'test', DEFAULT_LABEL))) {
      throw new KhdError('KHD_DATASET_INVALID', `dataset ${name} has no labels for test/: ${change.metric} compares predictions with them; keep its custom metric`);
    }
    const from = change.submitFrom === undefined ? dataset.submitFrom : change.submitFrom;
    const until = change.submitUntil === undefined ? dataset.submitUntil : change.submitUntil;
    if (from && until && Date.parse(from) >= Date.parse(until)) {
      throw new KhdError('KHD_BAD_REQUEST', `the window would close (${until}) before it opens (${from}): give --submit-until after --submit-from`);
    }
    const made = this.datasets.update(dataset.id, change, user.name);
    return { row: this.datasets.byId(dataset.id)!, made };
  }

  /**
   * `khd dataset rm` (admin): a dataset no session or submit names, with its files. One that
   * sessions or submits name stays (its board and its sessions' history would lose their
   * dataset): the refusal says how many, and what to do.
   */
  async remove(user: UserRow, name: string): Promise<void> {
    if (!user.admin) throw new KhdError('KHD_FORBIDDEN', 'only an admin can remove datasets');
    const dataset = this.datasets.visible(name, user);
    const used = this.datasets.references(dataset.id);
    if (used.sessions > 0 || used.submits > 0) {
      throw new KhdError(
        'KHD_DATASET_INVALID',
        `dataset ${name} is named by ${used.sessions} session(s) and ${used.submits} submit(s): it stays while they do (khd rm them first), or hide it with khd dataset change ${name} --private`,
      );
    }
    this.datasets.delete(dataset.id);
    await rm(join(this.dataDir.datasetPublic(name), '..'), { recursive: true, force: true });
  }

  /** Every change made to the dataset (admin). */
  changes(user: UserRow, name: string): DatasetChangeRecord[] {
    if (!user.admin) throw new KhdError('KHD_FORBIDDEN', "only an admin can read a dataset's changes");
    return this.datasets.changes(this.datasets.visible(name, user).id);
  }

  /** `khd dataset fs` (admin): every file of the dataset as the server keeps it, by part. */
  async files(user: UserRow, name: string): Promise<DatasetFile[]> {
    if (!user.admin) throw new KhdError('KHD_FORBIDDEN', "only an admin can list a dataset's files");
    this.datasets.visible(name, user);
    const parts = [
      ['public', this.dataDir.datasetPublic(name)],
      ['private', this.dataDir.datasetPrivate(name)],
      ['labels', this.dataDir.datasetLabels(name)],
    ] as const;
    const out: DatasetFile[] = [];
    for (const [part, root] of parts) {
      // The server's own folders, laid out at push: nothing in them was written by a session.
      for (const entry of await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])) {
        if (!entry.isFile()) continue;
        const full = join(entry.parentPath, entry.name);
        out.push({ part, path: relative(root, full), size: (await stat(full)).size });
      }
    }
    return out.sort((a, b) => (a.part === b.part ? (a.path < b.path ? -1 : 1) : a.part < b.part ? -1 : 1));
  }

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
    if (upload.state !== 'ready') throw new KhdError('KHD_UPLOAD_STATE', `upload '${upload.id}' is ${upload.state}, not ready: push again`);
    const plan = planDataset(readyFiles(upload), { labels: options.labels, visible: visible ?? [] }, options);
    if (!this.uploads.transition(upload.id, 'ready', 'used')) {
      throw new KhdError('KHD_UPLOAD_STATE', `upload '${upload.id}' is ${upload.state}, not ready: push again`);
    }
    await this.layOut(name, plan);
    const size = upload.files.reduce((sum, f) => sum + f.size, 0);
    const row = this.datasets.insert(name, options, size, upload.files.length, user.name);
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
