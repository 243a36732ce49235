import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import { enforcedLine } from '../../src/protocol/format.js';
import { formatSize } from '../../src/protocol/sizes.js';
import type { SessionInfo } from '../../src/protocol/types.js';
import { datasetFolder, PROBE_PY, project, TICKER_PY } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let admin: Participant;
let kim: Participant;
let lee: Participant;
const cleanups: (() => void)[] = [];

function newProject(files: Record<string, string>) {
  const p = project(files);
  cleanups.push(p.cleanup);
  return p.root;
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function sessionInfo(who: Participant, name: string): Promise<SessionInfo> {
  const r = await who.khd(['ps', '-a', '--json']);
  return (JSON.parse(r.stdout) as SessionInfo[]).find((s) => s.name === name)!;
}

beforeAll(async () => {
  server = await startTestServer();
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  kim = await admin.addUser('kim');
  lee = await admin.addUser('lee');
  const data = datasetFolder();
  cleanups.push(data.cleanup);
  const push = await admin.khd(['dataset', 'push', 'hello', data.root, '-m', 'two words']);
  expect(push.code).toBe(EXIT.ok);
});

afterAll(async () => {
  for (const p of [admin, kim, lee]) p.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

describe('khd run', () => {
  it('runs in a bubblewrap sandbox on this machine', () => {
    expect(server.services.info.sandbox).toBe(true);
  });

  it('runs the code on the dataset it cannot download, and -i exits with the session’s code', async () => {
    const root = newProject({ 'main.py': PROBE_PY, 'notes.txt': 'n' });
    const port = new URL(server.url).port;
    const r = await kim.khd(['run', '-d', 'hello', '-a', `${port} 3`, '-i'], { cwd: root });
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('Session kim/hello/1 is started\n');
    expect(r.stdout).toContain("dataset hello ['train']\n");
    expect(r.stdout).toContain("gpus 0 ''\n");
    expect(r.stdout).toContain('session kim/hello/1 True\n');
    expect(r.stdout).toContain('dataset read-only\n');
    expect(r.stdout).toContain('network unreachable\n');
    expect(r.stdout).toContain("files ['main.py', 'notes.txt']\n");
    expect(r.stdout).not.toContain('to stderr');
    expect(r.stderr).toContain('to stderr\n');
    // NSML's line protocol, where no terminal draws a bar.
    expect(r.stderr).toMatch(
      /^\.nsmlignore check - start\n\.nsmlignore check - done\nfile integrity check - start\nfile integrity check - done\n2 files, \d+ B: all to send\nmain\.py \d+ B - start\nmain\.py \d+ B - done \(1\/2 50\.00%\) \(\d+ B\/\d+ B \d+\.\d\d%\)$/m,
    );
    const info = await sessionInfo(kim, 'kim/hello/1');
    expect(info).toMatchObject({ status: 'Exited', exitCode: 3, type: 'normal', args: [port, '3'], cpus: 2 });
  });

  it('numbers sessions per user and dataset, and uses None without -d', async () => {
    const root = newProject({ 'main.py': 'print("plain")' });
    const first = await kim.khd(['run', '-i'], { cwd: root });
    expect(first.stdout).toBe('Session kim/None/1 is started\nplain\n');
    const second = await lee.khd(['run'], { cwd: root });
    expect(second.stdout).toBe('Session lee/None/1 is started\n');
  });

  it('refuses a missing entry file before uploading anything', async () => {
    const root = newProject({ 'train.py': 'print(1)' });
    const uploads = () => (server.services.db.prepare('SELECT COUNT(*) AS n FROM uploads').get() as { n: number }).n;
    const before = uploads();
    const r = await kim.khd(['run', '-d', 'hello'], { cwd: root });
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toBe(`error: entry file main.py not found in ${root}: pass -e with the file to run\n`);
    expect(uploads()).toBe(before);
  });

  it('says when the entry file is left out by .nsmlignore', async () => {
    const root = newProject({ 'main.py': '', '.nsmlignore': '*.py\n' });
    const r = await kim.khd(['run'], { cwd: root });
    expect(r.stderr).toBe('error: entry file main.py is left out (.nsmlignore:1: *.py): change .nsmlignore or pass -e\n');
  });

  it('refuses an empty project', async () => {
    const root = newProject({ '.git/HEAD': 'x' });
    const r = await kim.khd(['run'], { cwd: root });
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toContain('nothing to upload in');
  });

  it('refuses an unknown dataset before uploading', async () => {
    const root = newProject({ 'main.py': '' });
    const r = await kim.khd(['run', '-d', 'nope'], { cwd: root });
    expect(r.stderr).toBe("error: dataset 'nope' does not exist: see khd dataset ls\n");
  });

  it('refuses more GPUs than the server has, at once', async () => {
    const root = newProject({ 'main.py': '' });
    const r = await kim.khd(['run', '-g', '2'], { cwd: root });
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toBe('error: -g 2: the server has 0 GPU(s); ask for 0 or fewer\n');
  });

  it('--dry-run lists what would be sent and what is left out with the rule', async () => {
    const root = newProject({ 'main.py': 'x = 1\n', '.nsmlignore': 'data/\n', 'data/big.csv': 'a,b', '__pycache__/m.pyc': '' });
    const r = await kim.khd(['run', '--dry-run'], { cwd: root });
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toBe(
      'Would send 2 file(s), 12 B:\n  .nsmlignore  6 B\n  main.py  6 B\n' +
        'Left out:\n  __pycache__/  (default: __pycache__/)\n  data/  (.nsmlignore:1: data/)\n' +
        'Environment: default (no #nsml: line)\n',
    );
  });

  it('--show-default-nsmlignore prints the built-in rules; --show-limits the server’s', async () => {
    const rules = await kim.khd(['run', '--show-default-nsmlignore']);
    expect(rules.stdout.split('\n')).toEqual(expect.arrayContaining(['.git/', '__pycache__/', 'venv/', 'node_modules/']));
    const limits = await kim.khd(['run', '--show-limits']);
    expect(limits.stdout).toBe(
      'files per upload   20000\ntotal size         1 GB\none file           512 MB\nfolder depth       32\npath length        1024\n' +
        `session memory     ${formatSize(totalmem())}\nsession CPUs       ${availableParallelism()}\n` +
        'session time       3 days\nsession log        64 MB\nsession disk       20 GB\nsession files      1000000\n' +
        `enforced           ${enforcedLine(server.services.info.enforcement)}\n`,
    );
  });

  it('Ctrl-C during the upload cancels it on the server and leaves no session', async () => {
    const root = newProject({ 'main.py': 'print(1)', 'weights.bin': 'w'.repeat(4 * 1024 * 1024) });
    const r = await kim.khd(['run'], {
      cwd: root,
      // The handler registered for the upload fires as soon as it is registered: an early Ctrl-C.
      onInterrupt: (handler) => {
        setImmediate(() => void handler());
        return () => {};
      },
    });
    expect(r.code).toBe(EXIT.interrupted);
    expect(r.stderr).toContain('cancelled: the upload was dropped on the server and no session was left behind');
    const states = server.services.db.prepare('SELECT state FROM uploads WHERE id NOT IN (SELECT upload_id FROM sessions)').all();
    expect(states).toContainEqual({ state: 'cancelled' });
    expect(states).not.toContainEqual({ state: 'ready' });
  });
});

describe('khd logs', () => {
  let name: string;
  beforeAll(async () => {
    const root = newProject({ 'main.py': TICKER_PY });
    const r = await kim.khd(['run', '-a', '10 0', '-i'], { cwd: root });
    name = r.stdout.split('\n')[0]!.replace(/^Session (.*) is started$/, '$1');
  });

  it('prints the whole log, and --tail N only the last lines', async () => {
    const all = await kim.khd(['logs', name]);
    expect(all.stdout).toBe(Array.from({ length: 10 }, (_, i) => `tick ${i + 1}\n`).join(''));
    const tail = await kim.khd(['logs', name, '--tail', '3']);
    expect(tail.stdout).toBe('tick 8\ntick 9\ntick 10\n');
  });

  it('--json prints records with id, time, stream and line; --timestamps prefixes the time', async () => {
    const json = await kim.khd(['logs', name, '--json', '--tail', '1']);
    const record = JSON.parse(json.stdout);
    expect(record).toMatchObject({ id: 10, stream: 'stdout', line: 'tick 10' });
    const ts = await kim.khd(['logs', name, '--timestamps', '--tail', '1']);
    expect(ts.stdout).toBe(`${record.ts} tick 10\n`);
  });

  it('-f on an ended session prints everything and says how it ended', async () => {
    const r = await kim.khd(['logs', name, '-f', '--tail', '2']);
    expect(r.stdout).toBe('tick 9\ntick 10\n');
    expect(r.stderr).toBe(`session ${name} exited with code 0\n`);
  });

  it('answers another user’s session exactly like a missing one', async () => {
    const theirs = await lee.khd(['logs', name]);
    const missing = await lee.khd(['logs', 'kim/None/999']);
    expect(theirs.code).toBe(EXIT.failure);
    expect(theirs.stderr).toBe(`error: session ${name} does not exist: see khd ps -a\n`);
    expect(missing.stderr).toBe('error: session kim/None/999 does not exist: see khd ps -a\n');
    for (const cmd of [['stop', name], ['rm', name], ['memo', name, 'mine now']]) {
      expect((await lee.khd(cmd)).stderr).toBe(`error: session ${name} does not exist: see khd ps -a\n`);
    }
  });
});

describe('khd ps, memo, stop, rm', () => {
  it('shows a running session, stops it, and removes it', async () => {
    const root = newProject({ 'main.py': TICKER_PY });
    const started = await kim.khd(['run', '-a', '1000 0.05', '-m', 'long run'], { cwd: root });
    const name = started.stdout.trim().replace(/^Session (.*) is started$/, '$1');
    await waitFor(async () => (await kim.khd(['logs', name, '--tail', '1'])).stdout.startsWith('tick'), 'the first tick');

    const ps = await kim.khd(['ps']);
    const header = ps.stdout.split('\n')[0]!;
    expect(header.split(/\s{2,}/)).toEqual(['Name', 'Created', 'Args', 'Status', 'Summary', 'Description', '# of Models', 'Size', 'Type']);
    expect(ps.stdout).toMatch(new RegExp(`${name}\\s+(now|\\d+ seconds? ago)\\s+main.py 1000 0.05\\s+Running\\s+long run\\s+0\\s+0 B\\s+normal`));

    expect((await kim.khd(['memo', name, 'renamed'])).stderr).toBe(`✓ Memo of ${name} set\n`);
    expect((await sessionInfo(kim, name)).memo).toBe('renamed');

    const rmRunning = await kim.khd(['rm', name]);
    expect(rmRunning.code).toBe(EXIT.failure);
    expect(rmRunning.stderr).toBe(`error: session ${name} is Running: stop it first, or use khd rm -f\n`);

    const stop = await kim.khd(['stop', name]);
    expect(stop.stderr).toContain(`✓ Stopping ${name}`);
    const follow = await kim.khd(['logs', name, '-f', '--tail', '0']);
    expect(follow.stderr).toBe(`session ${name} stopped: stopped by the user\n`);
    expect(await sessionInfo(kim, name)).toMatchObject({ status: 'Stopped', reason: 'stopped by the user' });
    expect((await kim.khd(['ps'])).stdout).not.toContain(name);
    expect((await kim.khd(['stop', name])).stderr).toBe(`${name} is already Stopped: nothing to stop\n`);

    expect((await kim.khd(['rm', name])).stderr).toBe(`✓ Removed ${name}\n`);
    expect(await sessionInfo(kim, name)).toBeUndefined();
    expect((await kim.khd(['logs', name])).code).toBe(EXIT.failure);
  });

  it('rm -f stops a running session first; rm takes glob patterns', async () => {
    const root = newProject({ 'main.py': TICKER_PY });
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await lee.khd(['run', '-a', '1000 0.05'], { cwd: root });
      names.push(r.stdout.trim().replace(/^Session (.*) is started$/, '$1'));
    }
    const forced = await lee.khd(['rm', '-f', names[0]!]);
    expect(forced.stderr).toBe(`✓ Removed ${names[0]}\n`);
    const glob = await lee.khd(['rm', '-f', 'lee/None/*', 'lee/mnist/*']);
    expect(glob.code).toBe(EXIT.failure);
    for (const n of names.slice(1)) expect(glob.stderr).toContain(`✓ Removed ${n}\n`);
    expect(glob.stderr).toContain('error: no session matches lee/mnist/*');
    expect(JSON.parse((await lee.khd(['ps', '-a', '--json'])).stdout)).toEqual([]);
  });

  it('ps -n limits and -d filters, newest first', async () => {
    const r = await kim.khd(['ps', '-a', '-n', '1', '-d', 'hello', '--json']);
    const list = JSON.parse(r.stdout) as SessionInfo[];
    expect(list.map((s) => s.name)).toEqual(['kim/hello/1']);
  });
});

describe('abandoned uploads', () => {
  it('are swept with their files after a day', async () => {
    const kimRow = server.services.accounts.userByName('kim')!;
    server.services.db
      .prepare("INSERT INTO uploads (id, user_id, purpose, state, manifest, created_at, tree) VALUES ('old-one', ?, 'session', 'ready', '[]', 0, 'oldtree')")
      .run(kimRow.id);
    mkdirSync(join(server.dataDir, 'trees', 'oldtree'));
    expect(await server.services.uploads.sweep(Date.now() - 24 * 3600 * 1000)).toBeGreaterThanOrEqual(1);
    expect(existsSync(join(server.dataDir, 'trees', 'oldtree'))).toBe(false);
    expect(server.services.db.prepare("SELECT 1 FROM uploads WHERE id = 'old-one'").get()).toBeUndefined();
  });
});

describe('khd dataset', () => {
  it('lists datasets with their size and stores the scoring options', async () => {
    const data = datasetFolder();
    cleanups.push(data.cleanup);
    const push = await admin.khd([
      'dataset', 'push', 'scored', data.root, '--leaderboard', '--metric', 'macro_f1', '--order', 'asc',
      '--model-size-limit', '300MB', '--submit-interval', '10s', '-m', 'with rules',
    ]);
    expect(push.stderr).toContain('✓ Pushed dataset scored: 3 files, 39 B');
    const list = JSON.parse((await kim.khd(['dataset', 'ls', '--json'])).stdout);
    expect(list.find((d: { name: string }) => d.name === 'scored')).toMatchObject({
      leaderboard: true, metric: 'macro_f1', order: 'asc', modelSizeLimit: 300 * 1024 ** 2,
      submitIntervalMs: 10_000, description: 'with rules', files: 3, size: 39,
    });
    const table = (await kim.khd(['dataset', 'ls'])).stdout;
    expect(table).toMatch(/scored\s+39 B\s+3\s+\S.*\s+admin\s+macro_f1, lower is better\s+public\s+with rules/);
  });

  it('is for admins only, and refuses a folder without train/ or a name taken', async () => {
    const data = datasetFolder();
    cleanups.push(data.cleanup);
    expect((await kim.khd(['dataset', 'push', 'mine', data.root])).stderr).toBe('error: only an admin can push datasets; you are kim\n');
    const noTrain = newProject({ 'test/x': '1' });
    expect((await admin.khd(['dataset', 'push', 'bad', noTrain])).stderr).toContain('has no files under train/');
    expect((await admin.khd(['dataset', 'push', 'hello', data.root])).stderr).toBe(
      "error: dataset 'hello' already exists: push under a new name\n",
    );
  });

  it('keeps a private dataset from participants', async () => {
    const data = datasetFolder();
    cleanups.push(data.cleanup);
    await admin.khd(['dataset', 'push', 'secret', data.root, '--private']);
    expect((await kim.khd(['dataset', 'ls'])).stdout).not.toContain('secret');
    expect((await admin.khd(['dataset', 'ls'])).stdout).toMatch(/secret\s.*\sprivate\s/);
    const root = newProject({ 'main.py': '' });
    expect((await kim.khd(['run', '-d', 'secret'], { cwd: root })).stderr).toBe(
      "error: dataset 'secret' does not exist: see khd dataset ls\n",
    );
  });
});
