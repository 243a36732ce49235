// Environments and the project's own packages, against a real server in the sandbox, with
// wheels built here into a wheelhouse (`--pip-find-links`): requirements.txt and setup.py
// installed into a cached layer, the `#nsml:` line choosing an environment, what fails.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import type { EnvironmentDetails, EnvironmentInfo, SessionInfo } from '../../src/protocol/types.js';
import { resolvePython } from '../../src/server/executor/python.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';
import { submitDataset } from '../helpers/submit-project.js';
import { makeTree } from '../helpers/tree.js';
import { wheelhouse } from '../helpers/wheels.js';

let server: TestServer;
let admin: Participant;
let kim: Participant;
const cleanups: (() => void)[] = [];
const wheels = wheelhouse([
  { name: 'khd-greeting', version: '1.0', source: 'def hello():\n    return "hello from khd_greeting 1.0"\n', requires: ['khd-helper'] },
  { name: 'khd-helper', version: '2.0', source: 'VERSION = "2.0"\n' },
  { name: 'khd-other', version: '0.1', source: 'NAME = "other"\n' },
]);
const python = resolvePython();
const marker = `/tmp/khd-setup-ran-${process.pid}`;

const USES_GREETING = 'import khd_greeting, khd_helper\nprint(khd_greeting.hello(), khd_helper.VERSION)\n';

/** `khd run -i` of a project as `who`; the output and the session as ps shows it. */
async function runProject(who: Participant, files: Record<string, string>, args: string[] = []) {
  const p = makeTree(files, 'khd-env-project-');
  cleanups.push(p.cleanup);
  const r = await who.khd(['run', '-i', ...args], { cwd: p.root });
  const name = /Session (\S+) is started/.exec(r.stdout)?.[1];
  return { ...r, name, session: name ? await who.session(name) : undefined };
}

beforeAll(async () => {
  server = await startTestServer({ pip: { findLinks: wheels.dir } });
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  kim = await admin.addUser('kim', 'team-a');
});

afterAll(async () => {
  [admin, kim].forEach((p) => p.cleanup());
  cleanups.forEach((c) => c());
  wheels.cleanup();
  await server.stop();
});

describe('khd env', () => {
  it('lists the default environment with its Python and main packages, for everyone', async () => {
    await expect.poll(async () => (JSON.parse((await kim.khd(['env', 'ls', '--json'])).stdout) as EnvironmentInfo[])[0]?.version).toBe(python.version);
    const [def] = JSON.parse((await kim.khd(['env', 'ls', '--json'])).stdout) as EnvironmentInfo[];
    expect(def).toMatchObject({ name: 'default', default: true, builtIn: true, python: python.executable, gpus: false });
    expect(def!.packages.numpy).toMatch(/^\d+\./);
    expect((await kim.khd(['env', 'ls'])).stdout).toMatch(/^Name\s+Aliases\s+Python\s+Packages\s+GPUs\s+Description\ndefault \(default\)\s+3\.\d+\.\d+\s+.*numpy \d/);
  });

  it('adds (admins only) and removes environments; an unknown one is refused before anything is sent', async () => {
    const refused = await kim.khd(['env', 'add', 'x', '--python', python.executable]);
    expect(refused.stderr).toBe('error: only an admin can add environments\n');
    const added = await admin.khd(['env', 'add', 'torch-like', '--python', python.executable, '--alias', 'nsml/ml:cuda9*', '--alias', 'nvcr.io/nvidia/pytorch:*', '-m', 'the NSML images of KHD2020']);
    expect(added.code, added.stderr).toBe(EXIT.ok);
    expect(added.stderr).toMatch(/^✓ Added environment torch-like: Python 3\.\d+\.\d+, .*numpy .*; chosen by #nsml: nsml\/ml:cuda9\*, nvcr\.io\/nvidia\/pytorch:\*\n$/);
    expect((await admin.khd(['env', 'add', 'torch-like', '--python', python.executable])).stderr).toContain("environment 'torch-like' already exists");
    expect((await admin.khd(['env', 'add', 'broken', '--python', '/nonexistent/python'])).stderr).toContain("cannot run Python '/nonexistent/python'");
    expect((await admin.khd(['env', 'add', 'spare', '--python', python.executable])).code).toBe(EXIT.ok);
    expect((await admin.khd(['env', 'rm', 'spare'])).stderr).toBe('✓ Removed environment spare\n');
    expect((await admin.khd(['env', 'rm', 'spare'])).stderr).toBe("error: environment 'spare' does not exist: see khd env ls\n");
    expect((await admin.khd(['env', 'rm', 'default'])).stderr).toBe("error: the default environment is the server's --python: it cannot be removed\n");
    const unknown = await runProject(kim, { 'main.py': 'print(1)\n' }, ['--env', 'nope']);
    expect(unknown.code).toBe(EXIT.failure);
    expect(unknown.stderr).toContain("error: environment 'nope' does not exist: khd env ls lists them");
    expect(unknown.stderr).not.toContain('done');
  });
});

describe("a project's requirements", () => {
  it('installs requirements.txt into a layer the session imports from, and says so in the log', async () => {
    const r = await runProject(kim, { 'main.py': USES_GREETING, 'requirements.txt': '# the project\nkhd-greeting==1.0\n' });
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toContain('hello from khd_greeting 1.0 2.0\n');
    expect(r.stderr).toContain('Installing 1 package for environment default: khd-greeting==1.0\n');
    expect(r.stderr).toMatch(/Successfully installed khd-greeting-1\.0 khd-helper-2\.0\n/);
    expect(r.stderr).toMatch(/khd: installed in \d+\.\d s\n/);
  });

  it('installs nothing the second time: the cached layer is used', async () => {
    const r = await runProject(kim, { 'main.py': USES_GREETING, 'requirements.txt': 'KHD_Greeting == 1.0\n' });
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toContain('hello from khd_greeting 1.0 2.0\n');
    expect(r.stderr).toContain('khd: using cached packages for environment default (1: khd-greeting)\n');
    expect(r.stderr).not.toContain('Installing');
  });

  it('reads setup.py’s install_requires without running it on the server; a computed list is run only in the sandbox', async () => {
    const literal = `open(${JSON.stringify(marker)}, 'w').write('ran')\nfrom setuptools import setup\nsetup(name='p', install_requires=['khd-other'])\n`;
    const r = await runProject(kim, { 'main.py': 'import khd_other\nprint(khd_other.NAME)\n', 'setup.py': literal });
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toContain('other\n');
    expect(existsSync(marker)).toBe(false);
    const computed = literal.replace("['khd-other']", "[name for name in ['khd-helper']]");
    const c = await runProject(kim, { 'main.py': 'import khd_helper\nprint(khd_helper.VERSION)\n', 'setup.py': computed });
    expect(c.code, c.stderr).toBe(EXIT.ok);
    expect(c.stdout).toContain('2.0\n');
    // It ran in the sandbox, whose /tmp is its own: nothing of it reached the server's.
    expect(existsSync(marker)).toBe(false);
  });

  it('leaves a requirement the environment already has to the environment, whatever its pin, and a URL out', async () => {
    const r = await runProject(kim, {
      'main.py': 'import numpy\nprint("numpy", numpy.__version__)\n',
      'requirements.txt': 'numpy==0.0.1\nevil @ https://example.org/evil-1.0-py3-none-any.whl\n',
    });
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stderr).toMatch(/khd: numpy==0\.0\.1 left to default's numpy \d+\.\d+/);
    expect(r.stderr).toContain("khd: evil @ https://example.org/evil-1.0-py3-none-any.whl: packages come from the organiser's index or wheelhouse, not from a URL: left out\n");
    expect(r.stderr).not.toContain('Installing');
  });

  it('fails the session before its code starts when a requirement cannot be installed, naming it', async () => {
    const r = await runProject(kim, { 'main.py': 'print("never")\n', 'requirements.txt': 'khd-greeting==1.0\nno-such-package==9.9\n' });
    expect(r.stdout).not.toContain('never');
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'could not install its requirements: No matching distribution found for no-such-package==9.9' });
  });
});

describe("Debian's Python as an environment", () => {
  it('installs a project’s package over Debian’s own numpy, with Debian’s pip', async () => {
    const added = await admin.khd(['env', 'add', 'debian', '--python', '/usr/bin/python3', '-m', "Debian's python3-numpy, python3-torch"]);
    expect(added.code, added.stderr).toBe(EXIT.ok);
    const r = await runProject(kim, { 'main.py': `${USES_GREETING}import numpy\nprint(numpy.__file__)\n`, 'requirements.txt': 'khd-greeting==1.0\n' }, ['--env', 'debian']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stderr).toContain('Installing 1 package for environment debian: khd-greeting==1.0\n');
    expect(r.stdout).toContain('hello from khd_greeting 1.0 2.0\n/usr/lib/python3/dist-packages/numpy/__init__.py\n');
    expect(r.session).toMatchObject({ env: 'debian', status: 'Exited' });
  });
});

describe('the #nsml: line', () => {
  it('chooses the environment whose alias matches, and says which', async () => {
    const r = await runProject(kim, { 'main.py': 'import sys\nprint(sys.prefix)\n', 'setup.py': '#nsml: nsml/ml:cuda9.0-cudnn7-tf-1.11torch1.0keras2.2\nfrom setuptools import setup\nsetup(name="p")\n' });
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stderr).toContain('khd: #nsml: nsml/ml:cuda9.0-cudnn7-tf-1.11torch1.0keras2.2 → environment torch-like\n');
  });

  it('runs an image no alias matches on the default, with a first line naming the organiser’s fix', async () => {
    const r = await runProject(kim, { 'main.py': 'print("ran")\n', 'requirements.txt': '# nsml: nsml/default_ml:latest\n' });
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toContain('ran\n');
    // The first line of the session's log.
    const first = (await kim.khd(['logs', r.name!])).stderr.split('\n')[0];
    expect(first).toMatch(/^khd: #nsml: nsml\/default_ml:latest names no environment/);
    expect(r.stderr).toMatch(/khd: #nsml: nsml\/default_ml:latest names no environment of this server: running on default \(Python 3\.\d+\.\d+\)\. The organiser can add one: khd env add NAME --python PATH --alias 'nsml\/default_ml\*'\n/);
  });

  it('--dry-run shows the choice and the requirements', async () => {
    const p = makeTree({ 'main.py': 'x\n', 'requirements.txt': '#nsml: nvcr.io/nvidia/pytorch:19.06-py3\ntorch==1.13\nkhd-greeting\n' }, 'khd-env-dry-');
    cleanups.push(p.cleanup);
    const r = await kim.khd(['run', '--dry-run'], { cwd: p.root });
    expect(r.stdout).toContain('Environment: torch-like (#nsml: nvcr.io/nvidia/pytorch:19.06-py3 in requirements.txt)\n');
    expect(r.stdout).toContain('Requirements: torch==1.13, khd-greeting (what the environment lacks is installed, once, and cached)\n');
  });
});

describe('nsml_package.txt', () => {
  it('names the system packages the server lacks in the log, and to the organiser', async () => {
    const r = await runProject(kim, { 'main.py': 'print(1)\n', 'nsml_package.txt': 'khd-no-such-deb\ncoreutils\n' });
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stderr).toContain('khd: system packages from nsml_package.txt not on this server: khd-no-such-deb (they cannot be installed per session');
    expect(r.stderr).not.toMatch(/not on this server: .*coreutils/);
    const details = JSON.parse((await admin.khd(['env', 'ls', '--layers', '--json'])).stdout) as EnvironmentDetails;
    expect(details.missingSystemPackages).toEqual([expect.objectContaining({ name: 'khd-no-such-deb', sessions: 1 })]);
    expect(details.layers.map((l) => l.requirements)).toEqual(expect.arrayContaining([['khd-greeting==1.0']]));
    expect((await kim.khd(['env', 'ls', '--layers'])).stderr).toBe('error: only an admin can see the package layers\n');
  });
});

describe('a submit of a session with requirements', () => {
  it('runs on the same environment and its cached packages', async () => {
    const data = submitDataset();
    cleanups.push(data.cleanup);
    expect((await admin.khd(['dataset', 'push', 'toy', data.root])).code).toBe(EXIT.ok);
    const code = [
      'import argparse, os, khd_greeting',
      'import nsml',
      'p = argparse.ArgumentParser(); p.add_argument("--mode", default="train"); p.add_argument("--pause", type=int, default=0); p.add_argument("--iteration", default="0")',
      'args = p.parse_args()',
      'nsml.bind(save=lambda d: open(os.path.join(d, "m"), "w").write("1"), load=lambda d: None,',
      '          infer=lambda path: [print(khd_greeting.hello()) or "1" for _ in sorted(os.listdir(path))])',
      'if args.pause:',
      '    nsml.paused(scope=locals())',
      'nsml.save("best")',
    ].join('\n');
    const r = await runProject(kim, { 'main.py': code, 'requirements.txt': 'khd-greeting==1.0\n' }, ['-d', 'toy']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const submit = await kim.khd(['submit', '-t', r.name!, 'best']);
    expect(submit.code, submit.stderr).toBe(EXIT.ok);
    expect(submit.stdout).toContain('hello from khd_greeting 1.0\n');
    expect(submit.stdout).toMatch(/Score: 1\n$/);
    const ps = JSON.parse((await kim.khd(['ps', '-a', '--json'])).stdout) as SessionInfo[];
    expect(ps.find((s) => s.type === 'submit(test)')).toMatchObject({ status: 'Exited' });
  });
});
