import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import type { BoardRow, CheckpointInfo, SessionInfo, SubmitInfo } from '../../src/protocol/types.js';
import { project } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';
import { submitDataset, SUBMIT_PROJECT_PY } from '../helpers/submit-project.js';

let server: TestServer;
let admin: Participant;
const users: Record<string, Participant> = {};
const cleanups: (() => void)[] = [];
let root: string;

async function addUser(name: string, team: string) {
  users[name] = await admin.addUser(name, team);
}

async function push(name: string, args: string[], extra: Record<string, string> = {}, publicSample = true) {
  const data = submitDataset(extra, { publicSample });
  cleanups.push(data.cleanup);
  const r = await admin.khd(['dataset', 'push', name, data.root, ...args]);
  expect(r.code, r.stderr).toBe(EXIT.ok);
}

/** Trains on `dataset` and returns the session name. */
async function train(who: string, dataset: string, behaviour = 'ok'): Promise<string> {
  const r = await users[who]!.khd(['run', '-d', dataset, '-a', `--behaviour ${behaviour}`, '-i'], { cwd: root });
  expect(r.code, r.stderr).toBe(EXIT.ok);
  return /Session (\S+) is started/.exec(r.stdout)![1]!;
}

const submits = async (who: string, dataset: string) =>
  JSON.parse((await users[who]!.khd(['dataset', 'submits', dataset, '--json'])).stdout) as SubmitInfo[];

beforeAll(async () => {
  server = await startTestServer();
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  await addUser('kim', 'team-a');
  await addUser('park', 'team-a');
  await addUser('lee', 'team-b');
  await addUser('choi', 'team-c');
  await addUser('jung', 'team-d');
  const p = project({ 'main.py': SUBMIT_PROJECT_PY });
  cleanups.push(p.cleanup);
  root = p.root;
  await push('toy', ['--leaderboard', '--paused-timeout', '2s', '--infer-timeout', '2s', '--model-size-limit', '1KB']);
}, 120_000);

afterAll(async () => {
  Object.values(users).forEach((u) => u.cleanup());
  admin.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

describe('checkpoints', () => {
  it('model ls shows each checkpoint with the summary reported before it; ps counts them', async () => {
    const name = await train('kim', 'toy');
    const models = JSON.parse((await users.kim!.khd(['model', 'ls', name, '--json'])).stdout) as CheckpointInfo[];
    expect(models.map((m) => [m.checkpoint, m.summary, m.size])).toEqual([
      ['best', { epoch: 1, train__loss: 0.5 }, 1],
      ['worse', { epoch: 2, train__loss: 0.75 }, 1],
    ]);
    const table = (await users.kim!.khd(['model', 'ls', name])).stdout;
    expect(table).toMatch(/^Checkpoint\s+Last Modified\s+Elapsed\s+Summary\s+Size\n/);
    expect(table).toMatch(/best\s+(now|\d+ seconds? ago)\s+\d+ s\s+epoch=1 train\/loss=0.5\s+1 B/);
    const ps = JSON.parse((await users.kim!.khd(['ps', '-a', '--json'])).stdout) as SessionInfo[];
    expect(ps.find((s) => s.name === name)).toMatchObject({ summary: { epoch: 2, train__loss: 0.75 }, models: 2, modelsSize: 2 });
  });

  it('nsml.load(session=) loads a teammate’s checkpoint, read-only, and no other team’s', async () => {
    const first = await train('kim', 'toy');
    const [user, dataset, number] = first.split('/');
    const loader = project({
      'main.py': [
        'import os, nsml',
        "nsml.bind(load=lambda d: print('loaded', open(os.path.join(d, 'm.txt')).read()))",
        `nsml.load('best', session='${first}')`,
        "try:",
        `    open(os.path.join(os.environ['KHD_TEAM_CHECKPOINTS'], '${user}', '${dataset}', '${number}', 'best', 'x'), 'w')`,
        "except OSError:",
        "    print('read-only')",
        "try:",
        "    nsml.load('best', session='lee/toy/1')",
        "except FileNotFoundError as e:",
        "    print(e)",
        "print(sorted(os.listdir(os.environ['KHD_TEAM_CHECKPOINTS'])))",
      ].join('\n'),
    });
    cleanups.push(loader.cleanup);
    const r = await users.park!.khd(['run', '-d', 'toy', '-i'], { cwd: loader.root });
    expect(r.stdout).toContain("loaded 1\nread-only\nsession lee/toy/1 is not one of your team's");
    expect(r.stdout).toContain("['kim', 'park']\n");
  });

  it('model rm removes by name or glob, and says when nothing matches', async () => {
    const name = await train('kim', 'toy');
    const listed = async () => (JSON.parse((await users.kim!.khd(['ps', '-a', '--json'])).stdout) as SessionInfo[]).find((s) => s.name === name)!;
    // An ended session's size is kept between listings, and follows a removal.
    expect(await listed()).toMatchObject({ models: 2, modelsSize: 2 });
    expect(await listed()).toMatchObject({ models: 2, modelsSize: 2 });
    expect((await users.kim!.khd(['model', 'rm', name, 'wor*'])).stderr).toBe(`✓ Removed checkpoint worse of ${name}\n`);
    expect(await listed()).toMatchObject({ models: 1, modelsSize: 1 });
    const missing = await users.kim!.khd(['model', 'rm', name, 'nope']);
    expect(missing.code).toBe(EXIT.failure);
    expect(missing.stderr).toBe(`error: ${name} has no checkpoint matching 'nope': see khd model ls ${name}\n`);
    const left = JSON.parse((await users.kim!.khd(['model', 'ls', name, '--json'])).stdout) as CheckpointInfo[];
    expect(left.map((m) => m.checkpoint)).toEqual(['best']);
    expect((await users.lee!.khd(['model', 'ls', name])).stderr).toBe(`error: session ${name} does not exist: see khd ps -a\n`);
  });
});

describe('a team shares its sessions, as NSML’s team accounts did', () => {
  let kimSession: string;
  beforeAll(async () => {
    kimSession = await train('kim', 'toy');
  });

  it('a teammate lists, reads the logs and checkpoints of, and test-submits a session', async () => {
    // Their own by default, the team's with --team.
    expect(JSON.parse((await users.park!.khd(['ps', '-a', '--json'])).stdout) as SessionInfo[]).not.toContainEqual(expect.objectContaining({ name: kimSession }));
    const ps = JSON.parse((await users.park!.khd(['ps', '-a', '--team', '--json'])).stdout) as SessionInfo[];
    expect(ps.find((s) => s.name === kimSession)).toMatchObject({ user: 'kim', models: 2 });
    expect((await users.park!.khd(['ps', '-a', '--team'])).stdout).toContain(kimSession);
    const logs = await users.park!.khd(['logs', kimSession]);
    expect(logs.code, logs.stderr).toBe(EXIT.ok);
    expect(logs.stdout).toContain('trained');
    const models = JSON.parse((await users.park!.khd(['model', 'ls', kimSession, '--json'])).stdout) as CheckpointInfo[];
    expect(models.map((m) => m.checkpoint)).toEqual(['best', 'worse']);
    const submit = await users.park!.khd(['submit', '-t', kimSession, 'best']);
    expect(submit.code, submit.stderr).toBe(EXIT.ok);
    expect(submit.stdout).toMatch(/Score: 1\n$/);
  });

  it('only the owner (or an admin) stops, removes, edits it or removes its checkpoints', async () => {
    const refused = `error: session ${kimSession} is kim's: only its owner (or an admin) can change it; teammates can read it and submit it\n`;
    for (const args of [['rm', kimSession], ['memo', kimSession, 'mine now'], ['model', 'rm', kimSession, 'best']]) {
      const r = await users.park!.khd(args);
      expect(r.code, args.join(' ')).toBe(EXIT.failure);
      expect(r.stderr, args.join(' ')).toBe(refused);
    }
    const running = await users.kim!.runCode('import time\nprint("up", flush=True)\ntime.sleep(600)\n');
    const stop = await users.park!.khd(['stop', running.name]);
    expect(stop.stderr).toBe(`error: session ${running.name} is kim's: only its owner (or an admin) can change it; teammates can read it and submit it\n`);
    expect((await users.kim!.session(running.name)).status).toBe('Running');
    expect((await users.kim!.khd(['rm', '-f', running.name])).code).toBe(EXIT.ok);
    // A pattern removes only one's own sessions, never a teammate's.
    const glob = await users.park!.khd(['rm', 'kim/toy/*']);
    expect(glob.stderr).toBe('error: no session matches kim/toy/*\n');
    expect((await users.kim!.khd(['model', 'ls', kimSession, '--json'])).code).toBe(EXIT.ok);
    expect((await users.kim!.khd(['memo', kimSession, 'baseline'])).code).toBe(EXIT.ok);
  });

  it('another team sees none of it', async () => {
    const ps = JSON.parse((await users.lee!.khd(['ps', '-a', '--json'])).stdout) as SessionInfo[];
    expect(ps.filter((s) => s.user !== 'lee')).toEqual([]);
    for (const args of [['logs', kimSession], ['model', 'ls', kimSession], ['stop', kimSession]]) {
      expect((await users.lee!.khd(args)).stderr, args.join(' ')).toBe(`error: session ${kimSession} does not exist: see khd ps -a\n`);
    }
  });
});

describe('khd submit', () => {
  let kimSession: string;
  beforeAll(async () => {
    kimSession = await train('kim', 'toy');
  });

  it('-t scores the public sample, shows the code’s output, and does not count', async () => {
    const r = await users.kim!.khd(['submit', '-t', kimSession, 'best']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toContain("sees ['test'] with 2 test items\n");
    expect(r.stdout).toMatch(/Score: 1\n$/);
    expect(r.stderr).toContain(`Test submit of ${kimSession} best to toy (public sample; does not count)`);
    expect(r.stderr).toMatch(/✓ session kim\/toy\/\d+ is running\n✓ model loaded in \d+\.\d s\n… inferring\n✓ inferred in \d+\.\d s\n… scoring\nDone in/);
    expect(JSON.parse((await users.kim!.khd(['dataset', 'board', 'toy', '--json'])).stdout)).toEqual([]);
  });

  it('a real submit shows only the stages and the score, and goes on the board', async () => {
    const r = await users.kim!.khd(['submit', kimSession, 'best']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toBe('Score: 0.75\n');
    expect(r.stderr).not.toContain('sees');
    const board = JSON.parse((await users.lee!.khd(['dataset', 'board', 'toy', '--json'])).stdout) as BoardRow[];
    expect(board).toMatchObject([{ rank: 1, name: kimSession, score: 0.75, model: 'best', team: 'team-a', user: 'kim', recorded: expect.any(String), count: 1 }]);
    const mine = (await submits('park', 'toy')).filter((s) => s.source === kimSession);
    expect(mine.map((s) => [s.test, s.status, s.score])).toEqual([[false, 'scored', 0.75], [true, 'scored', 1]]);
    const submitSession = mine[0]!.session!;
    const logs = await users.kim!.khd(['logs', submitSession]);
    expect(logs.stderr).toContain('the output of a real submit is not shown');
  });

  it('refuses the team’s next counted submit within the interval, saying when it is allowed', async () => {
    const r = await users.park!.khd(['submit', kimSession, 'worse']);
    expect(r.code).toBe(EXIT.failure);
    // On the reader's clock (here, the TZ of the test run), with how long is left.
    expect(r.stderr).toMatch(/^error: team team-a has submitted to toy within the last 1 h: the next counted submit is allowed at \d{4}-\d\d-\d\d \d\d:\d\d \S+, in \d+ minutes \(test submits with -t are allowed now\)\n$/);
    expect((await users.park!.khd(['submit', '-t', kimSession, 'worse'])).code).toBe(EXIT.ok);
  });

  it('ranks teams by score, and refuses another team’s session like a missing one', async () => {
    expect((await users.lee!.khd(['submit', kimSession, 'best'])).stderr).toBe(`error: session ${kimSession} does not exist: see khd ps -a\n`);
    const leeSession = await train('lee', 'toy');
    expect((await users.lee!.khd(['submit', leeSession, 'worse'])).stdout).toBe('Score: 0.25\n');
    const board = (await users.lee!.khd(['dataset', 'board', 'toy'])).stdout;
    // NSML's board: what it ranks by, the person, Model as /DATASET/N/CHECKPOINT, when the best was recorded.
    expect(board).toMatch(
      /^toy · accuracy · higher is better\n\nRank\s+Name\s+Team\s+Score\s+Model\s+Count\s+Recorded\s+Last Submit\n1\s+kim\s+team-a\s+0\.75\s+\/toy\/\d+\/best\s+1\s+\S.*\n2\s+lee\s+team-b\s+0\.25\s+\/toy\/\d+\/worse\s+1\s+/,
    );
  });

  it('lets exactly one of two concurrent submits of a team run', async () => {
    const session = await train('choi', 'toy');
    const [a, b] = await Promise.all([
      users.choi!.khd(['submit', session, 'best']),
      users.choi!.khd(['submit', session, 'worse']),
    ]);
    expect([a.code, b.code].sort()).toEqual([EXIT.ok, EXIT.failure]);
    expect((a.code === EXIT.ok ? b : a).stderr).toMatch(/a submit of team team-c is being evaluated/);
    const board = JSON.parse((await users.choi!.khd(['dataset', 'board', 'toy', '--json'])).stdout) as BoardRow[];
    expect(board.filter((r) => r.team === 'team-c').map((r) => r.count)).toEqual([1]);
  });
});

describe('a submit that goes wrong fails with its error class and does not count', () => {
  const cases: [string, RegExp][] = [
    ['crash', /CrashBeforePause: the code failed before reaching nsml.paused\(\) \(exit code 3\)/],
    ['nopause', /NoPause: the code ended without calling nsml.paused\(\)/],
    ['hang-before-pause', /PausedTimeout: nsml.paused\(\) was not reached within 2 s/],
    ['infer-raises', /InferenceError: inference failed or wrote no predictions \(exit code 1\)/],
    ['infer-none', /InferenceError: inference failed or wrote no predictions/],
    ['infer-short', /WrongPredictions: the predictions have 1 line\(s\); the test set has 2/],
    ['infer-hang', /InferTimeout: loading and inference did not finish within 2 s/],
  ];
  for (const [behaviour, error] of cases) {
    it(behaviour, async () => {
      const session = await train('jung', 'toy', behaviour);
      const r = await users.jung!.khd(['submit', '-t', session, 'best']);
      expect(r.code).toBe(EXIT.failure);
      expect(r.stderr).toMatch(error);
      expect((await submits('jung', 'toy'))[0]).toMatchObject({ status: 'failed', score: null });
    });
  }

  it('none of them counted: a real submit right after is allowed', async () => {
    const session = await train('jung', 'toy');
    expect((await users.jung!.khd(['submit', session, 'best'])).stdout).toBe('Score: 0.75\n');
  });
});

describe('rules checked before anything runs', () => {
  it('refuses an unknown checkpoint, a checkpoint over the size limit, and a submit session', async () => {
    const session = await train('kim', 'toy');
    const before = (await submits('kim', 'toy')).length;
    const empty = await users.kim!.khd(['submit', '-t', session, '']);
    expect(empty.code).toBe(EXIT.usage);
    expect(empty.stderr).toBe(`error: give the checkpoint to submit, e.g. best (khd model ls ${session} lists them)\n`);
    expect((await users.kim!.khd(['submit', '-t', session, 'nope'])).stderr).toBe(
      `error: session ${session} has no checkpoint 'nope': see khd model ls ${session}\n`,
    );
    const big = await train('kim', 'toy', 'big');
    expect((await users.kim!.khd(['submit', '-t', big, 'best'])).stderr).toBe("error: checkpoint 'best' is 3.9 KB; toy allows at most 1 KB\n");
    const test = await users.kim!.khd(['submit', '-t', session, 'best']);
    const submitSession = /session (\S+) is running/.exec(test.stderr)![1]!;
    expect((await users.kim!.khd(['submit', '-t', submitSession, 'best'])).stderr).toBe(
      `error: ${submitSession} is a submit(test) session: submit a checkpoint of a training session\n`,
    );
    expect((await submits('kim', 'toy')).length).toBe(before + 1);
  });

  it('refuses -t without test_submit/, a real submit without a leaderboard, and outside the window', async () => {
    await push('plain', [], {}, false);
    await push('closed', ['--leaderboard', '--submit-until', '2020-01-01T00:00:00Z']);
    const plain = await train('choi', 'plain');
    expect((await users.choi!.khd(['submit', plain, 'best'])).stderr).toBe(
      'error: dataset plain keeps no leaderboard: only test submits (-t) are possible\n',
    );
    expect((await users.choi!.khd(['submit', '-t', plain, 'best'])).stderr).toBe(
      'error: dataset plain has no test_submit/: test submits are not possible on it\n',
    );
    const closed = await train('choi', 'closed');
    expect((await users.choi!.khd(['submit', '-t', closed, 'best'], { env: { KHD_UTC: '1' } })).stderr).toMatch(
      /^error: submits to closed closed at 2020-01-01 00:00 UTC, \d+ years ago\n$/,
    );
  });

  it('submits `best` when no checkpoint is named; Ctrl-C says the submit goes on, and nothing meant for training', async () => {
    const session = await train('jung', 'toy', 'infer-hang');
    const handlers: (() => void)[] = [];
    const pending = users.jung!.khd(['submit', '-t', session], {
      onInterrupt: (handler) => {
        handlers.push(handler);
        return () => {};
      },
    });
    // The submit's own, and its output follower's.
    await expect.poll(() => handlers.length).toBe(2);
    handlers.forEach((h) => h());
    const r = await pending;
    expect(r.stderr).toContain(`Test submit of ${session} best to toy`);
    expect(r.stderr).toContain('stopped watching; the submit goes on (khd dataset submits toy)');
    expect(r.stderr).not.toContain('khd stop stops it');
  });

  it('refuses training for a team while one of its submits is evaluated', async () => {
    const hanging = await train('lee', 'toy', 'hang-before-pause');
    const pending = users.lee!.khd(['submit', '-t', hanging, 'best']);
    for (let i = 0; i < 100 && !(await submits('lee', 'toy')).some((s) => s.status === 'evaluating'); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const blocked = await users.lee!.khd(['run', '-d', 'toy'], { cwd: root });
    expect(blocked.code).toBe(EXIT.failure);
    expect(blocked.stderr).toContain('a submit of team team-b is being evaluated: start training again when it is done');
    expect((await pending).stderr).toMatch(/PausedTimeout/);
  });

  it('scores with the dataset’s evaluation.py, and a crash of it is a platform error', async () => {
    await push('custom', ['--leaderboard', '--metric', 'custom'], {
      'evaluation.py': 'import argparse\np = argparse.ArgumentParser()\np.add_argument("--prediction")\np.add_argument("--test_label_path")\na = p.parse_args()\nprint("log line")\nprint(len(open(a.prediction).read().split()) * 10 + len(open(a.test_label_path).read().split()))\n',
    });
    await push('broken', ['--leaderboard', '--metric', 'custom'], { 'evaluation.py': 'raise SystemExit("no")\n' });
    const good = await train('park', 'custom');
    expect((await users.park!.khd(['submit', '-t', good, 'best'])).stdout).toMatch(/Score: 22\n$/);
    const bad = await train('park', 'broken');
    const r = await users.park!.khd(['submit', '-t', bad, 'best']);
    expect(r.stderr).toMatch(/ScoringError: evaluation.py failed \(exit 1\): no/);
  });
});
