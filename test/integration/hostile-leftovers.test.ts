// What participant code leaves behind for the root server to read: links where the server
// expects files (to the hidden labels, to another team's events), a sparse 20 GiB events file.
// Each cheat is written the way a participant who knows the data dir's layout would (it can be
// read in /proc/self/mountinfo), and each gets nothing: no score, no labels, no other team's
// metrics, and a server that keeps answering everyone.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import type { BoardRow, CheckpointInfo, MetricsPage } from '../../src/protocol/types.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';
import { submitDataset } from '../helpers/submit-project.js';

let server: TestServer;
let admin: Participant;
let kim: Participant;
let lee: Participant;
const cleanups: (() => void)[] = [];

/** A KHD-style evaluation.py: accuracy of the prediction file against the label file. */
const EVALUATION_PY = `
import argparse
p = argparse.ArgumentParser()
p.add_argument('--prediction')
p.add_argument('--test_label_path')
a = p.parse_args()
pred = open(a.prediction).read().split()
truth = open(a.test_label_path).read().split()
print(sum(x == y for x, y in zip(pred, truth)) / len(truth))
`;

/**
 * A project whose submit does no inference: it makes the predictions file a link to `--target`
 * and writes the three stages the runtime would have written, as participant code can.
 */
const LINKED_PREDICTIONS_PY = `
import argparse, json, os, sys, time
import nsml
p = argparse.ArgumentParser()
p.add_argument('--mode', default='train')
p.add_argument('--pause', type=int, default=0)
p.add_argument('--iteration')
p.add_argument('--target')
args = p.parse_args()
nsml.bind(save=lambda d: open(os.path.join(d, 'm'), 'w').write('1'), load=lambda d: None, infer=lambda x: [])
if args.pause:
    os.symlink(args.target, os.environ['KHD_SUBMIT_OUTPUT'])
    with open(os.environ['KHD_EVENTS_FILE'], 'a') as f:
        for stage in ('paused', 'loaded', 'inferred'):
            f.write(json.dumps({'event': stage, 'ts': time.time(), 'seconds': 0.1}) + '\\n')
    sys.exit(0)
nsml.save('best')
`;

beforeAll(async () => {
  server = await startTestServer({ sessionLimits: { diskCheckMs: 100 } });
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  kim = await admin.addUser('kim', 'team-a');
  lee = await admin.addUser('lee', 'team-b');
  for (const [name, extra, metric] of [['board', {}, 'accuracy'], ['evald', { 'evaluation.py': EVALUATION_PY }, 'custom']] as const) {
    const data = submitDataset(extra);
    cleanups.push(data.cleanup);
    const r = await admin.khd(['dataset', 'push', name, data.root, '--leaderboard', '--metric', metric]);
    expect(r.code, r.stderr).toBe(EXIT.ok);
  }
}, 120_000);

afterAll(async () => {
  for (const p of [admin, kim, lee]) p.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

const labels = (dataset: string) => join(server.dataDir, 'datasets', dataset, 'labels', 'test', 'test_label');

/** Runs `code` as `who`'s main.py on `dataset`; resolves with the session's name (with -i: once it has ended). */
async function run(who: Participant, dataset: string, code: string, args: string[] = [], interactive = true): Promise<string> {
  return (await who.runCode(code, ['-d', dataset, ...(interactive ? ['-i'] : []), ...args])).name;
}

describe('a submit whose predictions file is a link', () => {
  it('to the hidden labels on the server scores nothing (built-in metric)', async () => {
    const name = await run(kim, 'board', LINKED_PREDICTIONS_PY, ['-a', `--target ${labels('board')}`]);
    const r = await kim.khd(['submit', name, 'best']);
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toContain(
      'error: the submit failed: WrongPredictions: the predictions file is a symbolic link: inference must write its predictions into it, as a regular file (it does not count)',
    );
    expect(r.stdout).not.toContain('Score');
    expect(JSON.parse((await kim.khd(['dataset', 'board', 'board', '--json'])).stdout) as BoardRow[]).toEqual([]);
  });

  it("to where the scorer's sandbox shows the labels scores nothing (evaluation.py)", async () => {
    const name = await run(kim, 'evald', LINKED_PREDICTIONS_PY, ['-a', '--target /data/evald/test/test_label']);
    const r = await kim.khd(['submit', name, 'best']);
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toContain('WrongPredictions: the predictions file is a symbolic link');
    expect(JSON.parse((await kim.khd(['dataset', 'board', 'evald', '--json'])).stdout) as BoardRow[]).toEqual([]);
  });
});

describe('a checkpoint that is, or holds, a link', () => {
  const PLANT_PY = (target: string) => `
import os, nsml
nsml.bind(save=lambda d: open(os.path.join(d, 'm'), 'w').write('1'))
nsml.save('best')
root = os.environ['KHD_CHECKPOINT_DIR']
os.symlink(${JSON.stringify(target)}, os.path.join(root, 'leak'))
os.makedirs(os.path.join(root, 'inner'))
os.symlink(${JSON.stringify(target)}, os.path.join(root, 'inner', 'leak'))
print('planted')
`;

  it('is refused by submit, saying why, and never mounted: nothing of the labels, the database or another team reaches the code', async () => {
    for (const target of [labels('board'), join(server.dataDir, 'khd.db'), join(server.dataDir, 'checkpoints', 'lee')]) {
      const name = await run(kim, 'board', PLANT_PY(target));
      const link = await kim.khd(['submit', '-t', name, 'leak']);
      expect(link.code).toBe(EXIT.failure);
      expect(link.stderr).toBe("error: checkpoint 'leak' is a symbolic link: a checkpoint is a folder that nsml.save wrote\n");
      const inner = await kim.khd(['submit', '-t', name, 'inner']);
      expect(inner.code).toBe(EXIT.failure);
      expect(inner.stderr).toBe("error: checkpoint 'inner' holds a symbolic link, 'leak': it may hold only files and folders\n");
    }
  });

  it('is not listed as a checkpoint, and sizes count no target', async () => {
    const name = await run(kim, 'board', PLANT_PY(labels('board')));
    const models = JSON.parse((await kim.khd(['model', 'ls', name, '--json'])).stdout) as CheckpointInfo[];
    expect(models.map((m) => m.checkpoint)).toEqual(['best', 'inner']);
    expect(models.find((m) => m.checkpoint === 'inner')!.size).toBe(labels('board').length);
  });
});

describe('the events file', () => {
  it('made a sparse 20 GiB file ends its session, and the server answers everyone meanwhile', async () => {
    const code = "import os, time\nopen(os.environ['KHD_EVENTS_FILE'], 'a').truncate(20 * 2**30)\nprint('done', flush=True)\ntime.sleep(60)\n";
    const name = await run(kim, 'board', code, [], false);
    await expect.poll(async () => (await kim.session(name)).status).toBe('Failed');
    expect((await kim.session(name)).reason).toBe('events file over its limit (64 MB)');
    expect((await kim.khd(['logs', name])).stderr).toContain('khd: events file over its limit (64 MB): the session is stopped');
    // The file is still there, 20 GiB long: reading it stops at the cap.
    const ps = await lee.khd(['ps', '-a', '--json']);
    expect(ps.code).toBe(EXIT.ok);
    const metrics = await server.app.inject({ url: `/api/v1/sessions/${name}/metrics`, headers: { authorization: `Bearer ${kim.token()}` } });
    expect(metrics.statusCode).toBe(200);
    expect((metrics.json() as MetricsPage).points).toEqual([]);
  });

  it("replaced by a link to another team's events file shows none of that team's reports", async () => {
    const theirs = await run(lee, 'board', 'import nsml\nnsml.report(summary=True, step=1, acc=0.99)\n');
    const row = server.services.sessionStore.byName('lee', 'board', Number(theirs.split('/')[2]));
    const target = server.services.dataDir.events(row!.id);
    const code = `import os, time\nf = os.environ['KHD_EVENTS_FILE']\nos.remove(f) if os.path.exists(f) else None\nos.symlink(${JSON.stringify(target)}, f)\nprint('linked', flush=True)\ntime.sleep(60)\n`;
    const name = await run(kim, 'board', code, [], false);
    await expect.poll(async () => (await kim.session(name)).status).toBe('Failed');
    const mine = await kim.session(name);
    expect(mine).toMatchObject({ summary: null, reason: "events file refused: 'events.jsonl' is a symbolic link: the server follows none" });
    const metrics = await server.app.inject({ url: `/api/v1/sessions/${name}/metrics`, headers: { authorization: `Bearer ${kim.token()}` } });
    expect((metrics.json() as MetricsPage).points).toEqual([]);
    // Theirs is untouched.
    expect((await lee.session(theirs)).summary).toEqual({ acc: 0.99 });
  });
});
