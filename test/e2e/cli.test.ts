import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionInfo } from '../../src/protocol/types.js';
import { resolvePython } from '../../src/server/executor/python.js';
import { collect, exited, khd, KHD_BIN, REPO_ROOT, spawnServer, waitForOutput, type ServerProcess } from '../helpers/binary.js';
import { project, TICKER_PY } from '../helpers/projects.js';
import { testSessionUidsFlag } from '../helpers/uids.js';

// End to end: the built binary, a real `khd server` process, real Python in bubblewrap.
let work: string;
let server: ServerProcess;
let env: NodeJS.ProcessEnv;
let password: string;
let ticker: { root: string; cleanup(): void };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'khd-e2e-'));
  const base = { PATH: process.env.PATH, HOME: work, KHD_CONFIG_DIR: join(work, 'config'), KHD_NO_KEYRING: '1' };
  server = await spawnServer(join(work, 'data'), base);
  password = /created user 'admin' with password: (\S+)/.exec(server.stderr)![1]!;
  env = { ...base, KHD_SERVER: server.url };
  ticker = project({ 'main.py': TICKER_PY });
});

afterAll(async () => {
  server.child.kill('SIGTERM');
  await exited(server.child);
  ticker.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const sessions = async (): Promise<SessionInfo[]> => JSON.parse((await khd(['ps', '-a', '--json'], { env })).stdout);

describe('the khd binary', () => {
  it('prints the one-time admin password only on the first start, and where the dashboard is', async () => {
    expect(server.stderr).toContain("created user 'admin' with password: ");
    await expect.poll(() => server.stderr).toContain(`the dashboard: ${server.url}/ (the same accounts as khd login)\n`);
    expect(server.stderr).toContain('shown only this once');
  });

  it('prints its version with -V, -v and --version', async () => {
    const outputs = await Promise.all(['-V', '-v', '--version'].map(async (flag) => (await khd([flag], { env })).stdout));
    expect(outputs[0]).toMatch(/^\d+\.\d+\.\d+\S*\n$/);
    expect(new Set(outputs).size).toBe(1);
  });

  it('a second server on a port in use says so, without a stack, and exits 1', async () => {
    const port = new URL(server.url).port;
    const r = await khd(['server', '--port', port, '--data-dir', join(work, 'second'), ...testSessionUidsFlag()], { env: { ...env, KHD_ADMIN_PASSWORD: 'second-pass' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: 127.0.0.1:${port} is already in use: stop what listens there, or pick another --port\n`);
  });

  it('login → dataset push → run → logs -f → ps, with the hello example', async () => {
    const login = await khd(['login', '-u', 'admin', '--password-stdin'], { env, input: `${password}\n` });
    expect(login.code).toBe(0);

    const push = await khd(['dataset', 'push', 'hello_nsml', 'examples/hello_nsml/dataset'], { env });
    expect(push.code).toBe(0);
    expect(push.stderr).toContain('train/data.txt 12 B - done (1/1 100.00%)');

    const run = await khd(['run', '-d', 'hello_nsml'], { env, cwd: join(REPO_ROOT, 'examples/hello_nsml') });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('Session admin/hello_nsml/1 is started\n');
    expect(run.stderr).toMatch(/^main\.py \d+ B - done \(2\/2 100\.00%\)/m);

    const logs = await khd(['logs', 'admin/hello_nsml/1', '-f'], { env });
    expect(logs.code).toBe(0);
    const expected = ["read from dataset hello_nsml ['hello', 'world']", 'Number of gpus: 0'];
    for (let i = 0; i < 20; i++) expected.push(`Hello NSML ${i}`);
    expect(logs.stdout).toBe(`${expected.join('\n')}\n`);
    expect(logs.stderr).toBe('session admin/hello_nsml/1 exited with code 0\n');

    const ps = await khd(['ps', '-a'], { env });
    expect(ps.stdout).toMatch(/admin\/hello_nsml\/1\s+\S.*main\.py\s+Exited \(0\)/);
  });

  it('`khd logs | head -2` ends quietly with exit 0 when the reader goes away', async () => {
    const many = project({ 'main.py': 'for i in range(200000):\n    print("line", i)\n' });
    try {
      const run = await khd(['run', '-i'], { env, cwd: many.root });
      expect(run.code, run.stderr).toBe(0);
      const name = /Session (\S+) is started/.exec(run.stdout)![1]!;
      const piped = execFileSync('bash', ['-c', `"${process.execPath}" "${KHD_BIN}" logs ${name} 2>"$1" | head -2; echo "\${PIPESTATUS[0]}"`, 'bash', join(work, 'logs-stderr')], {
        env, encoding: 'utf8',
      });
      expect(piped).toBe('line 0\nline 1\n0\n');
      expect(readFileSync(join(work, 'logs-stderr'), 'utf8')).toBe('');
    } finally {
      many.cleanup();
    }
  });

  it('stop → rm on a running session', async () => {
    const run = await khd(['run', '-a', '1000 0.05'], { env, cwd: ticker.root });
    const name = /Session (\S+) is started/.exec(run.stdout)![1]!;
    expect((await khd(['stop', name], { env })).code).toBe(0);
    const follow = await khd(['logs', name, '-f', '--tail', '0'], { env });
    expect(follow.stderr).toBe(`session ${name} stopped: stopped by the user\n`);
    const rm = await khd(['rm', name], { env });
    expect(rm.stderr).toBe(`✓ Removed ${name}\n`);
    expect((await sessions()).map((s) => s.name)).not.toContain(name);
  });

  it('Ctrl-C while following with -i leaves the session running', async () => {
    const child = spawn(process.execPath, [KHD_BIN, 'run', '-i', '-a', '1000 0.05'], { env, cwd: ticker.root });
    const result = collect(child);
    const out = await waitForOutput(child.stdout!, /tick 2\n/);
    const name = /Session (\S+) is started/.exec(out)![1]!;
    child.kill('SIGINT');
    const done = await result;
    expect(done.code).toBe(130);
    expect(done.stderr).toContain('stopped following; the session keeps running (khd stop stops it)');
    expect((await sessions()).find((s) => s.name === name)?.status).toBe('Running');
    await khd(['rm', '-f', name], { env });
  });

  it('forks a session from its latest checkpoint or a named one: the code continues from it (NSML\'s --pause 1 --iteration)', async () => {
    const code = project({
      'main.py': [
        'import argparse, os',
        'import nsml',
        'p = argparse.ArgumentParser()',
        "p.add_argument('--epochs', type=int, default=3)",
        "p.add_argument('--pause', type=int, default=0)",
        "p.add_argument('--iteration', default=None)",
        'args = p.parse_args()',
        "state = {'epoch': 0}",
        "def save(d): open(os.path.join(d, 'epoch'), 'w').write(str(state['epoch']))",
        "def load(d): state['epoch'] = int(open(os.path.join(d, 'epoch')).read())",
        'nsml.bind(save=save, load=load)',
        'if args.pause:',
        '    nsml.paused(scope=locals())',
        "print('from epoch', state['epoch'], 'iteration', args.iteration)",
        'for _ in range(args.epochs):',
        "    state['epoch'] += 1",
        "    nsml.save(state['epoch'])",
        "print('to epoch', state['epoch'])",
        '',
      ].join('\n'),
    });
    try {
      const run = await khd(['run', '-i'], { env, cwd: code.root });
      expect(run.stdout).toMatch(/from epoch 0 iteration None\nto epoch 3\n$/);
      const source = /Session (\S+) is started/.exec(run.stdout)![1]!;

      const latest = await khd(['fork', source, '-i'], { env });
      expect(latest.code, latest.stderr).toBe(0);
      expect(latest.stdout).toMatch(new RegExp(`^Session (\\S+) is started \\(a fork of ${source} at checkpoint 3\\)\nfrom epoch 3 iteration 3\nto epoch 6\n$`));
      const fork = /Session (\S+) is started/.exec(latest.stdout)![1]!;

      const named = await khd(['fork', source, '-c', '1', '-a', '--epochs 1', '-i'], { env });
      expect(named.stdout).toMatch(/from epoch 1 iteration 1\nto epoch 2\n$/);

      // A fork of a fork: the code's own arguments, and the reserved ones once.
      const again = await khd(['fork', fork, '--json'], { env });
      const second = JSON.parse(again.stdout) as { name: string };
      const all = await sessions();
      expect(all.find((s) => s.name === second.name)).toMatchObject({ args: ['--pause', '1', '--iteration', '6'], forkOf: { session: fork, checkpoint: '6' } });
      const ps = (await khd(['ps', '-a'], { env })).stdout;
      expect(ps).toMatch(new RegExp(`${fork.replace(/\//g, '\\/')}\\s.*normal/fork`));
      expect(ps).toMatch(new RegExp(`${source.replace(/\//g, '\\/')}\\s.*\\snormal\\s*$`, 'm'));

      const missing = await khd(['fork', source, '-c', 'nope'], { env });
      expect(missing.code).toBe(1);
      expect(missing.stderr).toBe(`error: session ${source} has no checkpoint 'nope': khd model ls ${source} lists 1, 2, 3\n`);
      const none = await khd(['run', '-i', '-a', '--epochs 0'], { env, cwd: code.root });
      const empty = /Session (\S+) is started/.exec(none.stdout)![1]!;
      expect((await khd(['fork', empty], { env })).stderr).toBe(`error: session ${empty} has no checkpoint to continue from: its code saves them with nsml.save\n`);
      await khd(['stop', second.name], { env });

      // khd command: what starts each again, as NSML's `nsml command` gave it.
      expect((await khd(['command', source], { env })).stdout).toBe('khd run -e main.py -g 0 --cpus 2 --memory 24G\n');
      const namedFork = /Session (\S+) is started/.exec(named.stdout)![1]!;
      expect((await khd(['command', namedFork], { env })).stdout).toBe(`khd fork ${source} -c 1 -a '--epochs 1' -g 0 --cpus 2 --memory 24G\n`);
      const gpus = await khd(['gpustat', source], { env });
      expect(gpus.stderr).toBe(`error: session ${source} has no GPUs (it was started with -g 0)\n`);

      // ps -s: the name or the memo, in any case; % and _ are themselves.
      const found = (await khd(['ps', '-a', '-s', 'FORK OF', '--json'], { env })).stdout;
      expect((JSON.parse(found) as { name: string }[]).map((s) => s.name).sort()).toEqual([fork, second.name, /Session (\S+) is started/.exec(named.stdout)![1]!].sort());
      const byName = JSON.parse((await khd(['ps', '-a', '-s', source, '--json'], { env })).stdout) as { name: string }[];
      expect(byName.map((s) => s.name)).toContain(source);
      const nothing = await khd(['ps', '-a', '-s', '100%_'], { env });
      expect(nothing.stdout).toBe('');
      expect(nothing.stderr).toBe("no session's name or memo holds '100%_'\n");
    } finally {
      code.cleanup();
    }
  });

  it('plots what a session reported, one chart per metric, and as JSON', async () => {
    const code = project({
      'main.py': 'import nsml\nfor step in range(1, 41):\n    nsml.report(step=step, train__loss=1.0 / step, valid__acc=step / 40)\n',
    });
    try {
      const run = await khd(['run', '-i'], { env, cwd: code.root });
      const name = /Session (\S+) is started/.exec(run.stdout)![1]!;
      const chart = await khd(['plot', name, 'train/loss', '--height', '5', '--width', '20'], { env });
      expect(chart.code, chart.stderr).toBe(0);
      const lines = chart.stdout.split('\n');
      expect(lines[0]).toBe('train/loss  (steps 1–40; last 0.025, min 0.025, max 1)');
      // Six rows of a 5-high chart, each an axis label and the line, 20 columns of it.
      expect(lines.slice(1, 7).every((l) => /^\s+[\d.]+ [┤┼]/.test(l))).toBe(true);
      expect(lines[1]).toMatch(/^\s+1 [┤┼]/);
      const json = JSON.parse((await khd(['plot', name, '--json'], { env })).stdout) as Record<string, { step: number; value: number }[]>;
      expect(Object.keys(json)).toEqual(['train/loss', 'valid/acc']);
      expect(json['valid/acc']!.at(-1)).toEqual({ step: 40, value: 1 });
      const wrong = await khd(['plot', name, 'val/acc'], { env });
      expect(wrong.stderr).toBe(`error: ${name} reported no val/acc: it reported train/loss, valid/acc\n`);
      const quiet = /Session (\S+) is started/.exec((await khd(['run', '-i', '-a', '0 0'], { env, cwd: ticker.root })).stdout)![1]!;
      expect((await khd(['plot', quiet], { env })).stderr).toBe(`error: ${quiet} has reported no metrics yet: nsml.report(step=…, train__loss=…) in the code reports them\n`);
    } finally {
      code.cleanup();
    }
  });

  it('colours with a meaning on a terminal, and not at all with NO_COLOR (the spinner included)', async () => {
    // A real terminal: util-linux's script(1) runs khd on a pty.
    const onPty = (extra: NodeJS.ProcessEnv, command: string) =>
      execFileSync('script', ['-qec', command, '/dev/null'], {
        env: { ...env, ...extra, TERM: 'xterm' }, cwd: ticker.root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024,
      });
    const bin = `${process.execPath} ${KHD_BIN}`;
    // A terminal of a size, as people's are (script's pty has none).
    const sized = 'stty cols 120 rows 40;';
    const coloured = onPty({ FORCE_COLOR: '1' }, `${sized} ${bin} run -a '1 0'; ${bin} ps -a; ${bin} logs nobody/x/1; exit 0`);
    expect(coloured).toContain('\x1b[36m'); // the spinner, cyan
    expect(coloured).toMatch(/\x1b\[31merror:\x1b\[39m session nobody\/x\/1 does not exist/);
    expect(coloured).toMatch(/\x1b\[32mRunning|Exited \(0\)/);
    const plain = onPty({ NO_COLOR: '1' }, `${sized} ${bin} run -a '1 0'; ${bin} ps -a; ${bin} logs nobody/x/1; exit 0`);
    expect(plain).not.toMatch(/\x1b\[3\dm/);
    expect(plain).toContain('error: session nobody/x/1 does not exist');
    // A pty of no size gets NSML's lines, and the command ends.
    expect(onPty({}, `${bin} run -a '1 0'`)).toContain('file integrity check - done');
  });

  it('khd exec runs a command inside the running session: its files, its uid, no network, its exit code, a time limit', async () => {
    const code = project({ 'main.py': 'import time\nopen("made.txt", "w").write("hi")\nprint("up", flush=True)\ntime.sleep(300)\n' });
    try {
      const run = await khd(['run'], { env, cwd: code.root });
      const name = /Session (\S+) is started/.exec(run.stdout)![1]!;
      await expect.poll(async () => (await khd(['logs', name], { env })).stdout).toBe('up\n');
      const ls = await khd(['exec', name, '--', 'ls'], { env });
      expect(ls.code, ls.stderr).toBe(0);
      expect(ls.stdout).toBe('made.txt\nmain.py\n');
      // The session's own uid, not root; nothing but loopback; the server's folders nowhere.
      const id = await khd(['exec', name, '--', 'sh', '-c', 'id -u; tail -n +3 /proc/net/dev | cut -d: -f1; ls /'], { env });
      const [uid, ...rest] = id.stdout.trim().split('\n').map((l) => l.trim());
      expect(Number(uid)).toBeGreaterThan(0);
      expect(rest).toContain('lo');
      expect(rest.filter((l) => /^(eth|en|wl)/.test(l))).toEqual([]);
      expect(id.stdout).not.toContain(work);
      expect((await khd(['exec', name, '--', 'sh', '-c', 'echo oops >&2; exit 3'], { env })).code).toBe(3);
      const slow = await khd(['exec', name, '--timeout', '1', '--', 'sleep', '30'], { env });
      expect(slow.code).toBe(124);
      expect(slow.stderr).toBe('khd: stopped after 1 s (--timeout)\n');
      await khd(['stop', name], { env });
      await expect.poll(async () => (await sessions()).find((s) => s.name === name)?.status).toBe('Stopped');
      expect((await khd(['exec', name, '--', 'ls'], { env })).stderr).toBe(`error: session ${name} is Stopped: khd exec runs commands inside a running session\n`);
    } finally {
      code.cleanup();
    }
  });

  it('completes commands, flags, sessions, datasets and checkpoints in bash', async () => {
    const shim = mkdtempSync(join(work, 'bin-'));
    writeFileSync(join(shim, 'khd'), `#!/bin/sh\nexec ${process.execPath} ${KHD_BIN} "$@"\n`);
    chmodSync(join(shim, 'khd'), 0o755);
    const complete = (...words: string[]) =>
      execFileSync('bash', ['-c', `eval "$(khd completion bash)"; COMP_WORDS=(khd "$@"); COMP_CWORD=$#; _khd_complete; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', ...words], {
        env: { ...env, PATH: `${shim}:${process.env.PATH}` },
        encoding: 'utf8',
      }).split('\n').filter(Boolean);
    expect(complete('su')).toEqual(['submit']);
    expect(complete('run', '--sh')).toEqual(['--shm-size', '--show-limits', '--show-default-nsmlignore']);
    expect(complete('dataset', 'b')).toEqual(['board']);
    expect(complete('run', '-d', 'hel')).toEqual(['hello_nsml']);
    const source = (await sessions()).find((s) => s.models === 3 && !s.forkOf)!;
    expect(complete('logs', source.name.slice(0, -1))).toContain(source.name);
    expect(complete('model', 'pull', source.name, '')).toEqual(['1', '2', '3']);
    expect(complete('fork', source.name, '-c', '')).toEqual(['1', '2', '3']);
    // Not logged in, or the server away: commands and flags still, and nothing else, at once.
    const away = execFileSync('bash', ['-c', 'eval "$(khd completion bash)"; COMP_WORDS=(khd logs ""); COMP_CWORD=2; _khd_complete; echo "${#COMPREPLY[@]}"'], {
      env: { ...env, PATH: `${shim}:${process.env.PATH}`, KHD_SERVER: 'http://127.0.0.1:9' },
      encoding: 'utf8',
    });
    expect(away).toBe('0\n');
    // zsh and fish scripts are printed too.
    expect((await khd(['completion', 'zsh'], { env })).stdout).toContain('compdef _khd khd');
    expect((await khd(['completion', 'fish'], { env })).stdout).toContain("complete -c khd -f -a '(khd __complete");
    expect((await khd(['completion', 'tcsh'], { env })).stderr).toContain('shell must be one of bash, zsh, fish');
  });

  it('after a crash of the server, a session that was running is Failed with the reason', async () => {
    const run = await khd(['run', '-a', '100000 0.05 crash-marker'], { env, cwd: ticker.root });
    const name = /Session (\S+) is started/.exec(run.stdout)![1]!;
    // Running for real: its first tick is in the log.
    await expect.poll(async () => (await khd(['logs', name], { env })).stdout).toContain('tick');
    server.child.kill('SIGKILL');
    await exited(server.child);
    // The session dies with the server: nothing of it is left running.
    await expect.poll(() => {
      try {
        return execFileSync('pgrep', ['-f', 'crash-marker'], { encoding: 'utf8' });
      } catch {
        return 'none';
      }
    }).toBe('none');

    // Same port, so the stored login (kept per server URL) still applies.
    server = await spawnServer(join(work, 'data'), env, ['--port', new URL(server.url).port]);
    expect(server.stderr).not.toContain('created user');
    const info = (await sessions()).find((s) => s.name === name)!;
    expect(info).toMatchObject({ status: 'Failed', reason: 'the server restarted while the session was running' });
    const logs = await khd(['logs', name], { env });
    expect(logs.stdout).toMatch(/^tick 1\n/);
  });

  it('SIGTERM shuts the server down gracefully, ending its sessions with a reason', async () => {
    const run = await khd(['run', '-a', '100000 0.05'], { env, cwd: ticker.root });
    const name = /Session (\S+) is started/.exec(run.stdout)![1]!;
    server.child.kill('SIGTERM');
    expect(await exited(server.child)).toBe(0);
    expect(server.stderr).toContain('SIGTERM: stopping sessions and shutting down');
    server = await spawnServer(join(work, 'data'), env, ['--port', new URL(server.url).port]);
    expect((await sessions()).find((s) => s.name === name)).toMatchObject({
      status: 'Failed',
      reason: 'the server shut down while the session was running',
    });
  });

  it('refuses a project with unreadable files, naming them, instead of leaving them out silently', async () => {
    const p = project({ 'main.py': 'print(1)', 'secret/key.pem': 'k', 'ok.txt': 'x' });
    chmodSync(join(p.root, 'secret/key.pem'), 0o000);
    chmodSync(p.root, 0o755);
    // Root reads everything, so the participant is played by `nobody` where the tests run as root.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const home = mkdtempSync(join(tmpdir(), 'khd-nobody-'));
    chmodSync(home, 0o777);
    const child = spawn(process.execPath, [KHD_BIN, 'run', '--dry-run'], {
      cwd: p.root,
      env: { PATH: process.env.PATH, HOME: home, KHD_CONFIG_DIR: home },
      ...asNobody,
    });
    const r = await collect(child);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'error: cannot read 1 path(s) in the project: secret/key.pem. Fix their permissions or add them to .nsmlignore\n',
    );
    p.cleanup();
    rmSync(home, { recursive: true, force: true });
  });

  it('--no-sandbox runs sessions as plain processes and warns', async () => {
    const plain = await spawnServer(join(work, 'plain-data'), { ...env, KHD_ADMIN_PASSWORD: 'plain-password' }, ['--no-sandbox']);
    expect(plain.stderr).toContain('warning: --no-sandbox');
    const cfg = { ...env, KHD_SERVER: plain.url, KHD_CONFIG_DIR: join(work, 'plain-config') };
    await khd(['login', '-u', 'admin', '--password-stdin'], { env: cfg, input: 'plain-password' });
    const run = await khd(['run', '-i', '-a', '2 0'], { env: cfg, cwd: ticker.root });
    expect(run.stdout).toContain('tick 2\n');
    expect(run.stderr).toContain('khd: warning: this server runs sessions without a sandbox (--no-sandbox)');
    plain.child.kill('SIGTERM');
    await exited(plain.child);
  });

  it('applies the limit flags it is given, and advertises them', async () => {
    const limited = await spawnServer(join(work, 'limited-data'), { ...env, KHD_ADMIN_PASSWORD: 'limited-password' }, [
      '--session-timeout', '2h', '--max-log-size', '5M', '--max-disk', '3G', '--max-files', '5000',
    ]);
    const cfg = { ...env, KHD_SERVER: limited.url, KHD_CONFIG_DIR: join(work, 'limited-config') };
    const r = await khd(['run', '--show-limits'], { env: cfg });
    expect(r.stdout).toContain('session time       2 hours\nsession log        5 MB\nsession disk       3 GB\nsession files      5000\n');
    limited.child.kill('SIGTERM');
    await exited(limited.child);
  });

  it('refuses to start without bubblewrap unless given --no-sandbox, saying what to do', async () => {
    // A PATH with node and python but no bwrap (nor sh to look it up with).
    const bin = mkdtempSync(join(tmpdir(), 'khd-nobwrap-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const child = spawn(process.execPath, [KHD_BIN, 'server', '--port', '0', '--data-dir', join(work, 'nobwrap-data'), '--python', resolvePython().executable, ...testSessionUidsFlag()], {
      env: { ...env, PATH: bin, KHD_ADMIN_PASSWORD: 'x-password' },
    });
    const r = await collect(child);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bubblewrap (bwrap) is not installed, and sessions never run unsandboxed by default: install it (apt-get install bubblewrap), or pass --no-sandbox');
    rmSync(bin, { recursive: true, force: true });
  });
});
