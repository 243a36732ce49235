import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_HOST, DEFAULT_PORT } from '../protocol/types.js';
import { CliError } from './errors.js';

export const DEFAULT_SERVER = `http://${DEFAULT_HOST}:${DEFAULT_PORT}`;

export interface ConfigFile {
  server?: string;
  user?: string;
  /** Where the token of `server` was stored at login. */
  credentialStore?: 'keyring' | 'file';
}

export function configDir(env: NodeJS.ProcessEnv): string {
  if (env.KHD_CONFIG_DIR) return env.KHD_CONFIG_DIR;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'khd');
}

/** `config.json` in the config dir; environment variables override what it says. */
export class Config {
  readonly dir: string;
  private data: ConfigFile | undefined;

  constructor(private readonly env: NodeJS.ProcessEnv) {
    this.dir = configDir(env);
  }

  get file(): string {
    return join(this.dir, 'config.json');
  }

  read(): ConfigFile {
    if (this.data) return this.data;
    try {
      this.data = JSON.parse(readFileSync(this.file, 'utf8')) as ConfigFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new CliError(`cannot read ${this.file} (${(err as Error).message}): fix or delete it, then run khd login`);
      }
      this.data = {};
    }
    return this.data;
  }

  /** The server to talk to: the flag, else KHD_SERVER, else the saved one, else the local default. */
  server(flag?: string): string {
    const url = flag ?? this.env.KHD_SERVER ?? this.read().server ?? DEFAULT_SERVER;
    return normalizeServer(url);
  }

  async write(data: ConfigFile): Promise<void> {
    const { default: writeFileAtomic } = await import('write-file-atomic');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
    this.data = data;
  }
}

export function normalizeServer(url: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(url) ? url : `http://${url}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    throw new CliError(`'${url}' is not a server URL: use e.g. http://127.0.0.1:8757`, 2);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CliError(`'${url}' is not an http(s) URL`, 2);
  }
  return parsed.origin;
}
