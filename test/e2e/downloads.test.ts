// What participants take out of the platform, through the built binary: a session's code (khd
// pull), what it wrote in its folder (khd download), a checkpoint (khd model pull). Teammates
// may, other teams may not; a submit session never; a dataset may forbid files and checkpoints.
// What a session wrote is hostile: links and FIFOs are left out, paths never leave the folder.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exited, khd, spawnServer, type ServerProcess } from '../helpers/binary.js';
import { project } from '../helpers/projects.js';
import { submitDataset, SUBMIT_PROJECT_PY } from '../helpers/submit-project.js';

const WRITER_PY = `
import os
import nsml
from pkg.util import GREETING
os.makedirs('out', exist_ok=True)
open('out/results.csv', 'w').write('id,p\\n1,0.9\\n')
open('notes.txt', 'w').write(GREETING)
os.symlink('/etc/shadow', 'link')
os.mkfifo('fifo')
def save(d):
    open(os.path.join(d, 'weights.bin'), 'wb').write(bytes(range(256)) * 4)
    os.symlink('/etc/shadow', os.path.join(d, 'escape'))
nsml.bind(save=save, load=lambda d: None)
nsml.save('best')
print('wrote')
`;

let work: string;
let server: ServerProcess;
let env: NodeJS.ProcessEnv;
let park: NodeJS.ProcessEnv;
let lee: NodeJS.ProcessEnv;
let name: string;
let closedName: string;
const UTIL_PY = "GREETING = 'hello from pkg'\n";
const code = project({ 'main.py': WRITER_PY, 'pkg/__init__.py': '', 'pkg/util.py': UTIL_PY });
const dest = (d: string) => join(work, d);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'khd-e2e-dl-'));
  const base = { PATH: process.env.PATH, HOME: work, KHD_NO_KEYRING: '1', KHD_ADMIN_PASSWORD: 'dl-admin-password' };
  server = await spawnServer(join(work, 'data'), base);
  env = { ...base, KHD_SERVER: server.url, KHD_CONFIG_DIR: join(work, 'admin') };
  await khd(['login', '-u', 'admin', '--password-stdin'], { env, input: 'dl-admin-password' });
  await khd(['user', 'add', 'park', '--team', 'admin', '--password-stdin'], { env, input: 'park-password-1' });
  await khd(['user', 'add', 'lee', '--team', 'other', '--password-stdin'], { env, input: 'lee-password-1' });
  park = { ...env, KHD_CONFIG_DIR: join(work, 'park') };
  lee = { ...env, KHD_CONFIG_DIR: join(work, 'lee') };
  await khd(['login', '-u', 'park', '--password-stdin'], { env: park, input: 'park-password-1' });
  await khd(['login', '-u', 'lee', '--password-stdin'], { env: lee, input: 'lee-password-1' });
  const data = submitDataset();
  try {
    expect((await khd(['dataset', 'push', 'open', data.root, '--leaderboard'], { env })).code).toBe(0);
    const closed = await khd(['dataset', 'push', 'closed', data.root, '--leaderboard', '--no-model-pull'], { env });
    expect(closed.stderr).toContain("checkpoints and sessions' files stay on the server: khd model pull and khd download are refused");
  } finally {
    data.cleanup();
  }
  const run = await khd(['run', '-d', 'open', '-i'], { env, cwd: code.root });
  expect(run.code, run.stderr).toBe(0);
  name = /Session (\S+) is started/.exec(run.stdout)![1]!;
  closedName = /Session (\S+) is started/.exec((await khd(['run', '-d', 'closed', '-i'], { env, cwd: code.root })).stdout)![1]!;
}, 120_000);

afterAll(async () => {
  server.child.kill('SIGTERM');
  await exited(server.child);
  code.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe('taking things out of the platform', () => {
  it('khd pull: the code as uploaded, into USER_DATASET_N by default', async () => {
    const r = await khd(['pull', name], { env, cwd: work });
    expect(r.code, r.stderr).toBe(0);
    const folder = join(work, name.replaceAll('/', '_'));
    expect(r.stderr).toBe(`✓ 3 files, ${Buffer.byteLength(WRITER_PY) + Buffer.byteLength(UTIL_PY)} B into ${folder}\n`);
    expect(readFileSync(join(folder, 'main.py'), 'utf8')).toBe(WRITER_PY);
    expect(readFileSync(join(folder, 'pkg/util.py'), 'utf8')).toBe(UTIL_PY);
    // A teammate's session too; another team's is answered like a missing one.
    expect((await khd(['pull', name, dest('by-park')], { env: park })).code).toBe(0);
    // Their own in ps, the team's with --team.
    expect((await khd(['ps', '-a'], { env: park })).stderr).toBe('no sessions yet: start one with khd run\n');
    expect((await khd(['ps', '-a', '--team'], { env: park })).stdout).toContain(name);
    const other = await khd(['pull', name, dest('by-lee')], { env: lee });
    expect(other.stderr).toBe(`error: session ${name} does not exist: see khd ps -a\n`);
    expect(existsSync(dest('by-lee'))).toBe(false);
    // Nothing without a login.
    const anonymous = await fetch(`${server.url}/api/v1/sessions/${name}/code`);
    expect(anonymous.status).toBe(401);
  });

  it('khd download: what the session wrote; links and FIFOs left out and named; one file with -s', async () => {
    const r = await khd(['download', name, dest('files')], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/left out \(links and other non-files\): .*link/);
    expect(readFileSync(dest('files/out/results.csv'), 'utf8')).toBe('id,p\n1,0.9\n');
    expect(readFileSync(dest('files/notes.txt'), 'utf8')).toBe('hello from pkg');
    expect(readdirSync(dest('files')).sort()).toEqual(['main.py', 'notes.txt', 'out', 'pkg']);

    const one = await khd(['download', name, dest('one'), '-s', 'out/results.csv'], { env });
    expect(one.code, one.stderr).toBe(0);
    expect(readdirSync(dest('one'))).toEqual(['results.csv']);
    // A link, a path out of the folder, a missing file: refused, nothing made.
    const link = await khd(['download', name, dest('link'), '-s', 'link'], { env });
    expect(link.code).toBe(1);
    expect(link.stderr).toMatch(/^error: session \S+'s folder: .*link/);
    const up = await khd(['download', name, dest('up'), '-s', '../../../etc/passwd'], { env });
    expect(up.stderr).toMatch(/'\.\.\/\.\.\/\.\.\/etc\/passwd': path has an empty, '\.' or '\.\.' part/);
    expect((await khd(['download', name, dest('none'), '-s', 'nope.txt'], { env })).stderr).toBe(`error: session ${name}'s folder has no 'nope.txt'\n`);
    for (const d of ['link', 'up', 'none']) expect(existsSync(dest(d))).toBe(false);
  });

  it('khd model pull: the checkpoint as saved, its link left out', async () => {
    const r = await khd(['model', 'pull', name, 'best', dest('best')], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(dest('best/weights.bin'))).toEqual(Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256)));
    expect(readdirSync(dest('best'))).toEqual(['weights.bin']);
    expect(r.stderr).toContain('left out (links and other non-files): escape');
    expect((await khd(['model', 'pull', name, 'worst', dest('worst')], { env })).stderr).toBe(`error: session ${name} has no checkpoint 'worst': see khd model ls ${name}\n`);
  });

  it('never writes into a folder that exists', async () => {
    writeFileSync(dest('taken'), 'mine');
    const r = await khd(['pull', name, dest('taken')], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: ${dest('taken')} already exists: give a folder that does not exist yet\n`);
    expect(readFileSync(dest('taken'), 'utf8')).toBe('mine');
  });

  it('refuses files and checkpoints where the dataset says so, and everything of a submit session', async () => {
    expect((await khd(['download', closedName, dest('closed')], { env })).stderr).toBe(
      "error: dataset closed keeps checkpoints and sessions' files on the server: its files cannot be downloaded in this competition\n",
    );
    expect((await khd(['model', 'pull', closedName, 'best', dest('closed')], { env })).stderr).toContain('its checkpoints cannot be downloaded');
    expect((await khd(['pull', closedName, dest('closed-code')], { env })).code).toBe(0);

    const trainer = project({ 'main.py': SUBMIT_PROJECT_PY });
    try {
      const trained = /Session (\S+) is started/.exec((await khd(['run', '-d', 'open', '-i'], { env, cwd: trainer.root })).stdout)![1]!;
      expect((await khd(['submit', '-t', trained], { env })).code).toBe(0);
      const ps = JSON.parse((await khd(['ps', '-a', '--json'], { env })).stdout) as { name: string; type: string }[];
      const submit = ps.find((s) => s.type === 'submit(test)')!.name;
      for (const args of [['pull', submit], ['download', submit], ['model', 'pull', submit, 'best']]) {
        const r = await khd([...args, dest(`submit-${args[0]}`)], { env });
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(new RegExp(`^error: session ${submit} is a submit\\(test\\) session, run on the hidden test set`));
      }
    } finally {
      trainer.cleanup();
    }
  });
});
