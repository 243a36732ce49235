import { existsSync, lstatSync } from 'node:fs';
import { cp, copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DatasetOptions } from '../../protocol/types.js';
import type { Executor } from '../executor/executor.js';
import { SANDBOX_WORK_DIR } from '../executor/sandbox.js';
import { PredictionError, scoreBuiltin } from './metrics.js';

export const SCORER_TIMEOUT_MS = 10 * 60 * 1000;
const SANDBOX_PREDICTIONS = '/khd/predictions';

/** The scorer itself failed (a crash in evaluation.py, no score printed): a platform error. */
export class ScorerError extends Error {}

/** There is no label file to score against: the organiser's layout, not the participant's code. */
export class NoLabelsError extends ScorerError {}

export interface ScoreRequest {
  metric: DatasetOptions['metric'];
  datasetName: string;
  predictionsDir: string;
  predictionsFile: string;
  /** The labels of the test set being scored (the dataset's labels/test or labels/test_submit). */
  labelsDir: string;
  /** The label file names to look for, in order: the first found is the one scored against. */
  labelNames: string[];
  /** The dataset's evaluation.py, for metric custom. */
  evaluationPy: string | null;
  scratchDir: string;
}

/**
 * Scores predictions in a process of its own, apart from the participant's session: built-in
 * metrics here; for metric custom the dataset's `evaluation.py`, in the sandbox, in a working
 * folder laid out the way the organisers' scripts expect (their labels at
 * `data/DATASET/test/NAME`, also at `/data/DATASET/test/NAME`), given `--prediction F` and,
 * when the script takes it, `--test_label_path L`. The last line it prints is the score.
 * Throws PredictionError for the participant's mistakes, ScorerError for the platform's.
 */
export class Scorer {
  constructor(private readonly executor: Executor) {}

  async score(req: ScoreRequest): Promise<number> {
    const label = req.labelNames.find((name) => isFile(join(req.labelsDir, name))) ?? null;
    if (req.metric !== 'custom') {
      if (!label) throw new NoLabelsError(`the dataset has no labels to score against (${req.labelNames.join(' or ')})`);
      const [predictions, labels] = await Promise.all([
        readFile(join(req.predictionsDir, req.predictionsFile), 'utf8'),
        readFile(join(req.labelsDir, label), 'utf8'),
      ]);
      return scoreBuiltin(req.metric, predictions, labels);
    }
    if (!req.evaluationPy) throw new ScorerError('the dataset uses metric custom but has no evaluation.py');
    return this.runEvaluation(req, req.evaluationPy, label);
  }

  private async runEvaluation(req: ScoreRequest, evaluationPy: string, label: string | null): Promise<number> {
    const work = await mkdtemp(join(req.scratchDir, 'scorer-'));
    try {
      await copyFile(evaluationPy, join(work, 'evaluation.py'));
      // Where the organisers' scripts read their labels from ("use the full path").
      const labelsHere = join('data', req.datasetName, 'test');
      if (existsSync(req.labelsDir)) await cp(req.labelsDir, join(work, labelsHere), { recursive: true });
      else await mkdir(join(work, labelsHere), { recursive: true });
      const inside = this.executor.sandboxed;
      const source = await readFile(evaluationPy, 'utf8');
      // KHD2019's scripts declare only --prediction (some keep a variable named test_label_path),
      // and argparse refuses what they do not declare: the option goes only to those that do.
      const takesLabelPath = /["']--test_label_path["']/.test(source);
      const stdout: string[] = [];
      const stderr: string[] = [];
      const execution = this.executor.start(
        {
          workDir: work, sessionName: 'scorer', entry: 'evaluation.py', gpuIds: [], env: {},
          // The labels alone, where a script with an absolute path looks: nothing else of the dataset.
          datasetName: req.datasetName,
          datasetParts: existsSync(req.labelsDir) ? [{ name: 'test', host: req.labelsDir }] : [],
          mounts: [{ env: 'KHD_PREDICTIONS', host: req.predictionsDir, inside: SANDBOX_PREDICTIONS, writable: false }],
          args: [
            '--prediction', join(inside ? SANDBOX_PREDICTIONS : req.predictionsDir, req.predictionsFile),
            ...(takesLabelPath && label ? ['--test_label_path', join(inside ? SANDBOX_WORK_DIR : work, labelsHere, label)] : []),
          ],
        },
        (stream, lines) => (stream === 'stdout' ? stdout : stderr).push(...lines),
      );
      const timer = setTimeout(() => execution.stop(), SCORER_TIMEOUT_MS);
      const result = await execution.result.finally(() => clearTimeout(timer));
      if (result.exitCode !== 0) {
        const why = `evaluation.py failed (exit ${result.exitCode ?? result.signal}): ${stderr.slice(-3).join(' | ').slice(0, 500)}`;
        throw label ? new ScorerError(why) : new NoLabelsError(`${why}; the dataset has no labels for it (${join(labelsHere, 'test_label')})`);
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

function isFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
}

export { PredictionError };
