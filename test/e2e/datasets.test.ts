// An organiser's datasets through the built binary: NSML's columns in `dataset ls`, `dataset
// change` (the window, limits, description, visibility; the metric only before the board has a
// score; every change logged) and `dataset fs` (where each file went at push), admins only.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exited, khd, spawnServer, type ServerProcess } from '../helpers/binary.js';
import { project } from '../helpers/projects.js';
import { submitDataset, SUBMIT_PROJECT_PY } from '../helpers/submit-project.js';

let work: string;
let server: ServerProcess;
let env: NodeJS.ProcessEnv;
let kim: NodeJS.ProcessEnv;
const data = submitDataset();
const code = project({ 'main.py': SUBMIT_PROJECT_PY });

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'khd-e2e-ds-'));
  const base = { PATH: process.env.PATH, HOME: work, KHD_NO_KEYRING: '1', KHD_ADMIN_PASSWORD: 'ds-admin-password' };
  server = await spawnServer(join(work, 'data'), base);
  env = { ...base, KHD_SERVER: server.url, KHD_CONFIG_DIR: join(work, 'admin') };
  await khd(['login', '-u', 'admin', '--password-stdin'], { env, input: 'ds-admin-password' });
  await khd(['user', 'add', 'kim', '--team', 'team-a', '--password-stdin'], { env, input: 'kim-password-1' });
  kim = { ...env, KHD_CONFIG_DIR: join(work, 'kim') };
  await khd(['login', '-u', 'kim', '--password-stdin'], { env: kim, input: 'kim-password-1' });
  expect((await khd(['dataset', 'push', 'toy', data.root, '--leaderboard', '-m', 'four hidden items'], { env })).code).toBe(0);
}, 60_000);

afterAll(async () => {
  server.child.kill('SIGTERM');
  await exited(server.child);
  data.cleanup();
  code.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe('an organiser’s datasets', () => {
  it("lists NSML's columns: Size, Last Modified, Author, the board's measure, public or private", async () => {
    const ls = await khd(['dataset', 'ls'], { env: kim });
    expect(ls.stdout).toMatch(/^Name\s+Size\s+Files\s+Last Modified\s+Author\s+Leaderboard\s+Visibility\s+Description\ntoy\s+\d+ B\s+9\s+\S.*\s+admin\s+accuracy, higher is better\s+public\s+four hidden items\n$/);
  });

  it('changes the window, limits and description, each change logged; refuses a window that closes before it opens', async () => {
    expect((await khd(['dataset', 'change', 'toy', '-m', 'mine now'], { env: kim })).stderr).toBe('error: only an admin can change datasets\n');
    const r = await khd(['dataset', 'change', 'toy', '-m', 'five hidden items', '--infer-timeout', '30m', '--submit-until', '2099-12-31T00:00:00Z'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      '✓ toy: description four hidden items → five hidden items\n' +
        '✓ toy: inferTimeoutMs 1 hour → 30 minutes\n' +
        '✓ toy: submitUntil (none) → 2099-12-31T00:00:00.000Z\n',
    );
    // Times on the reader's clock, with how far off they are; --utc (or KHD_UTC=1) for UTC.
    const bad = await khd(['dataset', 'change', 'toy', '--submit-from', '2100-01-01T00:00:00Z'], { env: { ...env, TZ: 'Asia/Seoul' } });
    expect(bad.stderr).toMatch(/^error: the window would close \(2099-12-31 09:00 GMT\+9, in \d+ years\) before it opens \(2100-01-01 09:00 GMT\+9, in \d+ years\): give --submit-until after --submit-from\n$/);
    const utc = await khd(['--utc', 'dataset', 'change', 'toy', '--submit-from', '2100-01-01T00:00:00Z'], { env: { ...env, TZ: 'Asia/Seoul' } });
    expect(utc.stderr).toMatch(/^error: the window would close \(2099-12-31 00:00 UTC, in \d+ years\) before it opens \(2100-01-01 00:00 UTC, in \d+ years\): give --submit-until after --submit-from\n$/);
    const log = await khd(['dataset', 'change', 'toy'], { env: { ...env, KHD_UTC: '1' } });
    const when = '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC, \\S+(?: \\S+)*';
    expect(log.stdout).toMatch(
      new RegExp(`^When\\s+By\\s+Setting\\s+Was\\s+Now\\n${when}\\s+admin\\s+description\\s+four hidden items\\s+five hidden items\\n${when}\\s+admin\\s+inferTimeoutMs\\s+1 hour\\s+30 minutes\\n${when}\\s+admin\\s+submitUntil\\s+\\(none\\)\\s+2099-12-31T00:00:00.000Z\\n$`),
    );
    expect((await khd(['dataset', 'change', 'toy', '--infer-timeout', '30m'], { env })).stderr).toBe('toy already had those settings: nothing changed\n');
  });

  it('hides a dataset with --private and shows it again with --public', async () => {
    expect((await khd(['dataset', 'change', 'toy', '--private'], { env })).code).toBe(0);
    expect((await khd(['dataset', 'ls'], { env: kim })).stderr).toContain('no datasets yet');
    expect((await khd(['dataset', 'change', 'toy', '--public'], { env })).code).toBe(0);
    expect((await khd(['dataset', 'ls'], { env: kim })).stdout).toContain('toy');
  });

  it('changes the metric before the board has a score, never after', async () => {
    expect((await khd(['dataset', 'change', 'toy', '--metric', 'macro_f1'], { env })).stderr).toBe('✓ toy: metric accuracy → macro_f1\n');
    const custom = await khd(['dataset', 'change', 'toy', '--metric', 'custom'], { env });
    expect(custom.stderr).toBe('error: dataset toy has no evaluation.py: the custom metric runs it; push the dataset again with one\n');
    const trained = await khd(['run', '-d', 'toy', '-i'], { env: kim, cwd: code.root });
    const session = /Session (\S+) is started/.exec(trained.stdout)![1]!;
    expect((await khd(['submit', session], { env: kim })).code).toBe(0);
    const after = await khd(['dataset', 'change', 'toy', '--metric', 'accuracy'], { env });
    expect(after.stderr).toBe("error: dataset toy's board already has scores by macro_f1 (desc): its metric and order stay; push the dataset again under a new name to rank another way\n");
  });

  it('says what was probably meant: a dataset, a session, a checkpoint of the team', async () => {
    const dataset = await khd(['run', '-d', 'tyo'], { env: kim, cwd: code.root });
    expect(dataset.stderr).toBe("error: dataset 'tyo' does not exist: did you mean toy?\n");
    const trained = JSON.parse((await khd(['ps', '-a', '--json'], { env: kim })).stdout) as { name: string; type: string }[];
    const session = trained.find((s) => s.type === 'normal')!.name;
    expect((await khd(['logs', `${session}1`], { env: kim })).stderr).toBe(`error: session ${session}1 does not exist: did you mean ${session}?\n`);
    expect((await khd(['submit', '-t', session, 'bset'], { env: kim })).stderr).toBe(`error: session ${session} has no checkpoint 'bset': did you mean best?\n`);
    expect((await khd(['model', 'pull', session, 'wrose', join(work, 'w')], { env: kim })).stderr).toBe(`error: session ${session} has no checkpoint 'wrose': did you mean worse?\n`);
    // Nothing of another team's is ever suggested.
    await khd(['user', 'add', 'lee', '--team', 'team-b', '--password-stdin'], { env, input: 'lee-password-1' });
    const lee = { ...env, KHD_CONFIG_DIR: join(work, 'lee') };
    await khd(['login', '-u', 'lee', '--password-stdin'], { env: lee, input: 'lee-password-1' });
    expect((await khd(['logs', `${session}1`], { env: lee })).stderr).toBe(`error: session ${session}1 does not exist: see khd ps -a\n`);
  });

  it('removes a dataset nothing names, with its files; keeps one that sessions name', async () => {
    expect((await khd(['dataset', 'push', 'spare', data.root], { env })).code).toBe(0);
    expect(existsSync(join(work, 'data', 'datasets', 'spare'))).toBe(true);
    expect((await khd(['dataset', 'rm', 'spare'], { env: kim })).stderr).toBe('error: only an admin can remove datasets\n');
    const r = await khd(['dataset', 'rm', 'spare'], { env });
    expect(r.stderr).toBe('✓ Removed dataset spare\n');
    expect((await khd(['dataset', 'ls'], { env })).stdout).not.toContain('spare');
    expect(existsSync(join(work, 'data', 'datasets', 'spare'))).toBe(false);
    const kept = await khd(['dataset', 'rm', 'toy'], { env });
    expect(kept.stderr).toMatch(/^error: dataset toy is named by \d+ session\(s\) and \d+ submit\(s\): it stays while they do \(khd rm them first\), or hide it with khd dataset change toy --private\n$/);
    // The name is free again.
    expect((await khd(['dataset', 'push', 'spare', data.root], { env })).code).toBe(0);
  });

  it('lists where each file went at push, for admins only', async () => {
    const fs = await khd(['dataset', 'fs', 'toy', '--json'], { env });
    const files = JSON.parse(fs.stdout) as { part: string; path: string }[];
    expect(files.map((f) => `${f.part} ${f.path}`)).toEqual([
      'labels test/test_label', 'labels test_submit/test_label',
      'private test/a', 'private test/b', 'private test/c', 'private test/d', 'private test_submit/a', 'private test_submit/b',
      'public train/x.txt',
    ]);
    expect((await khd(['dataset', 'fs', 'toy'], { env: kim })).stderr).toBe("error: only an admin can list a dataset's files\n");
  });
});
