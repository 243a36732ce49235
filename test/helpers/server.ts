import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT } from '../../src/protocol/errors.js';
import { testIO, type TestIO } from '../../src/cli/test-io.js';
import { main } from '../../src/cli/main.js';
import type { Context } from '../../src/cli/context.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/main.js';
import type { SessionInfo } from '../../src/protocol/types.js';
import { makeTree } from './tree.js';
import { testSessionUids } from './uids.js';

export const ADMIN_PASSWORD = 'admin-password-1';
/** Cheap scrypt for tests: the parameters are stored with each hash, so nothing else changes. */
export const TEST_SCRYPT = { N: 1024, r: 8, p: 1 } as const;

export interface TestServer extends RunningServer {
  dataDir: string;
  warnings: string[];
  stop(): Promise<void>;
}

export async function startTestServer(
  options: { gpus?: number; dataDir?: string; port?: number } & Pick<ServerOptions, 'limits' | 'sessionLimits' | 'maxProcesses' | 'tmpBytes' | 'cgroups' | 'pip' | 'python' | 'maxGpusPerTeam' | 'executor' | 'slurm'> = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'khd-data-'));
  const warnings: string[] = [];
  const server = await startServer({
    host: '127.0.0.1',
    port: options.port ?? 0,
    dataDir,
    gpus: options.gpus ?? 0,
    adminPassword: ADMIN_PASSWORD,
    auth: { scrypt: TEST_SCRYPT },
    heartbeatMs: 200,
    submitPollMs: 50,
    limits: options.limits,
    sessionLimits: options.sessionLimits,
    maxProcesses: options.maxProcesses,
    sessionUids: testSessionUids(),
    cgroups: options.cgroups,
    tmpBytes: options.tmpBytes,
    pip: options.pip,
    python: options.python,
    maxGpusPerTeam: options.maxGpusPerTeam,
    executor: options.executor,
    slurm: options.slurm,
    warn: (m) => warnings.push(m),
  });
  return {
    ...server,
    dataDir,
    warnings,
    async stop() {
      await server.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  io: TestIO;
}

/** One participant: their own config dir, talking to `url`; runs the CLI's real code in-process. */
export class Participant {
  readonly configDir = mkdtempSync(join(tmpdir(), 'khd-config-'));
  /** Projects made by runCode, removed with the participant. */
  private readonly owned: (() => void)[] = [];

  constructor(
    readonly url: string,
    private readonly extraEnv: NodeJS.ProcessEnv = {},
  ) {}

  get env(): NodeJS.ProcessEnv {
    return { KHD_CONFIG_DIR: this.configDir, KHD_SERVER: this.url, KHD_NO_KEYRING: '1', HOME: this.configDir, ...this.extraEnv };
  }

  async khd(
    argv: string[],
    opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv; onInterrupt?: Context['onInterrupt']; clock?: () => number } = {},
  ): Promise<CliResult> {
    const io = testIO({ input: opts.input });
    const code = await main(argv, {
      io,
      env: { ...this.env, ...opts.env },
      cwd: opts.cwd ?? this.configDir,
      // Back-off and polling run at test speed, but still yield to the server.
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 20))),
      onInterrupt: opts.onInterrupt ?? (() => () => {}),
      clock: opts.clock,
    });
    return { code, stdout: io.stdoutText(), stderr: io.stderrText(), io };
  }

  async login(user: string, password: string): Promise<void> {
    const r = await this.khd(['login', '-u', user, '--password-stdin'], { input: `${password}\n` });
    if (r.code !== EXIT.ok) throw new Error(`login failed: ${r.stderr}`);
  }

  /**
   * As an admin: creates the account `name` (password `NAME-password`) with `khd user add`, and
   * returns that user, logged in.
   */
  async addUser(name: string, team?: string): Promise<Participant> {
    const r = await this.khd(['user', 'add', name, ...(team ? ['--team', team] : []), '--password-stdin'], { input: `${name}-password` });
    if (r.code !== EXIT.ok) throw new Error(`user add ${name} failed: ${r.stderr}`);
    const user = new Participant(this.url);
    await user.login(name, `${name}-password`);
    return user;
  }

  /**
   * `khd run ARGS` in a new project whose `main.py` is `code` (removed with this participant):
   * the session's name and the command's output. With `-i` among `args` it has ended by then.
   */
  async runCode(code: string, args: string[] = []): Promise<CliResult & { name: string }> {
    const p = makeTree({ 'main.py': code }, 'khd-project-');
    this.owned.push(p.cleanup);
    const r = await this.khd(['run', ...args], { cwd: p.root });
    const name = /Session (\S+) is (?:started|queued)/.exec(r.stdout + r.stderr)?.[1];
    if (!name) throw new Error(`khd run started no session: ${r.stderr}`);
    return { ...r, name };
  }

  /** The session `name` as `khd ps -a --json` shows it. */
  async session(name: string): Promise<SessionInfo> {
    const all = JSON.parse((await this.khd(['ps', '-a', '--team', '--json'])).stdout) as SessionInfo[];
    const found = all.find((s) => s.name === name);
    if (!found) throw new Error(`khd ps -a shows no session ${name}`);
    return found;
  }

  /** The token `khd login` stored in the 0600 file. */
  token(): string {
    return (JSON.parse(readFileSync(join(this.configDir, 'credentials.json'), 'utf8')) as Record<string, string>)[this.url]!;
  }

  cleanup(): void {
    rmSync(this.configDir, { recursive: true, force: true });
    this.owned.forEach((c) => c());
  }
}
