import { describe, expect, it } from 'vitest';
import { ERRORS, EXIT, type ErrorCode } from '../protocol/errors.js';
import { ApiError, ConnectionError } from './api/client.js';
import { createContext } from './context.js';
import { CliError, NotLoggedInError, SilentExit, UsageError } from './errors.js';
import { testIO } from './test-io.js';
import { exitCodeOf, main } from './main.js';

function ctxWithIO() {
  const io = testIO();
  return { io, ctx: createContext({ io, env: { KHD_CONFIG_DIR: '/nonexistent/khd-test' } }) };
}

describe('error → exit code', () => {
  it('maps every catalogue code of an API refusal to its exit code and prints the message', () => {
    for (const code of Object.keys(ERRORS) as ErrorCode[]) {
      const { io, ctx } = ctxWithIO();
      expect(exitCodeOf(new ApiError(code, `msg for ${code}`, ERRORS[code].status), ctx)).toBe(ERRORS[code].exit);
      expect(io.stderrText()).toBe(`error: msg for ${code}\n`);
    }
  });

  it('gives 4 for refused tokens, 2 for usage errors, 1 for an unreachable server', () => {
    const { ctx } = ctxWithIO();
    expect(exitCodeOf(new ApiError('KHD_TOKEN_EXPIRED', 'expired', 401), ctx)).toBe(EXIT.auth);
    expect(exitCodeOf(new NotLoggedInError('http://x'), ctx)).toBe(EXIT.auth);
    expect(exitCodeOf(new UsageError('bad flag'), ctx)).toBe(EXIT.usage);
    expect(exitCodeOf(new ConnectionError('http://127.0.0.1:9', 'ECONNREFUSED'), ctx)).toBe(EXIT.failure);
    expect(exitCodeOf(new CliError('plain'), ctx)).toBe(EXIT.failure);
  });

  it('passes a session’s own exit code through silently', () => {
    const { io, ctx } = ctxWithIO();
    expect(exitCodeOf(new SilentExit(3), ctx)).toBe(3);
    expect(io.stderrText()).toBe('');
  });

  it('says which URL it could not reach', () => {
    const { io, ctx } = ctxWithIO();
    exitCodeOf(new ConnectionError('http://127.0.0.1:9', 'ECONNREFUSED'), ctx);
    expect(io.stderrText()).toContain('cannot reach the khd server at http://127.0.0.1:9 (ECONNREFUSED)');
  });
});

describe('main', () => {
  const env = { KHD_CONFIG_DIR: '/nonexistent/khd-test' };

  it('exits 2 on an unknown command or flag, with a hint', async () => {
    const io = testIO();
    expect(await main(['rnu'], { io, env })).toBe(EXIT.usage);
    expect(io.stderrText()).toContain("unknown command 'rnu'");
    expect(io.stderrText()).toContain('(Did you mean run?)');
    const io2 = testIO();
    expect(await main(['ps', '--bogus'], { io: io2, env })).toBe(EXIT.usage);
  });

  it('exits 2 on a malformed session name, saying the expected form', async () => {
    const io = testIO();
    expect(await main(['logs', 'not-a-session'], { io, env })).toBe(EXIT.usage);
    expect(io.stderrText()).toContain('expected USER/DATASET/N');
  });

  it('exits 4 when not logged in', async () => {
    const io = testIO();
    expect(await main(['ps'], { io, env: { ...env, KHD_SERVER: 'http://127.0.0.1:9' } })).toBe(EXIT.auth);
    expect(io.stderrText()).toBe('error: not logged in to http://127.0.0.1:9: run khd login\n');
  });

  it('prints the version and help with exit 0', async () => {
    const io = testIO();
    expect(await main(['--version'], { io, env })).toBe(0);
    expect(io.stdoutText()).toMatch(/^\d+\.\d+\.\d+(-\w+)?\n$/);
    for (const flag of ['-V', '-v']) {
      const short = testIO();
      expect(await main([flag], { io: short, env })).toBe(0);
      expect(short.stdoutText()).toBe(io.stdoutText());
    }
    const io2 = testIO();
    expect(await main(['--help'], { io: io2, env })).toBe(0);
    expect(io2.stdoutText()).toContain('run [options]');
  });
});

describe('every command’s --help', () => {
  it('shows an example of the command', async () => {
    const { newRootCommand } = await import('./main.js');
    const { createContext } = await import('./context.js');
    const root = newRootCommand(createContext({ io: testIO(), env: {} }));
    const missing: string[] = [];
    const visit = (command: typeof root, path: string[]) => {
      for (const sub of command.commands) {
        const name = [...path, sub.name()];
        if ((sub as unknown as { _hidden?: boolean })._hidden || sub.name() === 'help') continue;
        if (sub.commands.length > 0) visit(sub, name);
        if ((sub as unknown as { _actionHandler?: unknown })._actionHandler) {
          let help = '';
          sub.configureOutput({ writeOut: (t) => (help += t), writeErr: () => {} });
          sub.outputHelp();
          if (!/\nExamples?:\n  khd /.test(help)) missing.push(name.join(' '));
        }
      }
    };
    visit(root, []);
    expect(missing).toEqual([]);
  });
});
