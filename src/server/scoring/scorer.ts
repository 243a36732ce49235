import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DatasetOptions } from '../../protocol/types.js';
import type { Executor } from '../executor/executor.js';
import { PredictionError, scoreBuiltin } from './metrics.js';

export const SCORER_TIMEOUT_MS = 10 * 60 * 1000;
const SANDBOX_PREDICTIONS = '/khd/predictions';
const SANDBOX_LABELS = '/khd/labels';

/** The scorer itself failed (a crash in evaluation.py, no score printed): a platform error. */
export class ScorerError extends Error {}

export interface ScoreRequest {
  metric: DatasetOptions['metric'];
  predictionsDir: string;
  predictionsFile: string;
  labelsDir: string;
  labelsFile: string;
  /** The dataset's evaluation.py, for metric custom. */
  evaluationPy: string | null;
  scratchDir: string;
}

/**
 * Scores predictions in a process of its own, apart from the participant's session: built-in
 * metrics here, `evaluation.py --prediction F --test_label_path L` in the sandbox (it prints the
 * score on its last line). Throws PredictionError for the participant's mistakes, ScorerError
 * for the platform's.
 */
export class Scorer {
  constructor(private readonly executor: Executor) {}

  async score(req: ScoreRequest): Promise<number> {
    // Checked here for both kinds of metric: a missing label file must not reach the sandbox,
    // whose error would name a path of the server's.
    if (!existsSync(join(req.labelsDir, req.labelsFile))) throw new ScorerError(`the dataset has no ${req.labelsFile}`);
    if (req.metric !== 'custom') {
      const [predictions, labels] = await Promise.all([
        readFile(join(req.predictionsDir, req.predictionsFile), 'utf8'),
        readFile(join(req.labelsDir, req.labelsFile), 'utf8'),
      ]);
      return scoreBuiltin(req.metric, predictions, labels);
    }
    if (!req.evaluationPy) throw new ScorerError('the dataset uses metric custom but has no evaluation.py');
    return this.runEvaluation(req, req.evaluationPy);
  }

  private async runEvaluation(req: ScoreRequest, evaluationPy: string): Promise<number> {
    const work = await mkdtemp(join(req.scratchDir, 'scorer-'));
    try {
      await copyFile(evaluationPy, join(work, 'evaluation.py'));
      const inside = this.executor.sandboxed;
      const stdout: string[] = [];
      const stderr: string[] = [];
      const execution = this.executor.start(
        {
          workDir: work, datasetName: null, datasetParts: [], env: {}, sessionName: 'scorer', entry: 'evaluation.py', gpuIds: [],
          mounts: [
            { env: 'KHD_PREDICTIONS', host: req.predictionsDir, inside: SANDBOX_PREDICTIONS, writable: false },
            // The label file alone: the rest of the private folder stays out of reach.
            { env: 'KHD_LABELS', host: join(req.labelsDir, req.labelsFile), inside: `${SANDBOX_LABELS}/${req.labelsFile}`, writable: false },
          ],
          args: [
            '--prediction', join(inside ? SANDBOX_PREDICTIONS : req.predictionsDir, req.predictionsFile),
            '--test_label_path', join(inside ? SANDBOX_LABELS : req.labelsDir, req.labelsFile),
          ],
        },
        (stream, lines) => (stream === 'stdout' ? stdout : stderr).push(...lines),
      );
      const timer = setTimeout(() => execution.stop(), SCORER_TIMEOUT_MS);
      const result = await execution.result.finally(() => clearTimeout(timer));
      if (result.exitCode !== 0) {
        throw new ScorerError(`evaluation.py failed (exit ${result.exitCode ?? result.signal}): ${stderr.slice(-3).join(' | ').slice(0, 500)}`);
      }
      const last = stdout.filter((l) => l.trim()).at(-1) ?? '';
      const score = Number(last.trim());
      if (!last.trim() || !Number.isFinite(score)) throw new ScorerError(`evaluation.py printed no score (last line: '${last.slice(0, 80)}')`);
      return score;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
}

export { PredictionError };
