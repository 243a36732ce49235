import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';

export const KEYRING_SERVICE = 'khd';

export type StoredWhere = { kind: 'keyring' } | { kind: 'file'; path: string; why?: string };

type CredentialFile = Record<string, string>;

/**
 * Tokens per server URL: in the OS keychain through @napi-rs/keyring, else in a 0600 file
 * written atomically (KHD_NO_KEYRING=1 chooses the file). KHD_TOKEN overrides both.
 */
export class Credentials {
  constructor(
    private readonly config: Config,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  get file(): string {
    return join(this.config.dir, 'credentials.json');
  }

  async get(server: string): Promise<string | undefined> {
    if (this.env.KHD_TOKEN) return this.env.KHD_TOKEN;
    const cfg = this.config.read();
    if (cfg.credentialStore === 'keyring' && cfg.server === server && !this.noKeyring()) {
      const token = await keyringCall((e) => e.getPassword(), server);
      if (typeof token === 'string') return token;
    }
    return this.readFile()[server];
  }

  async set(server: string, token: string): Promise<StoredWhere> {
    let why = 'KHD_NO_KEYRING is set';
    if (!this.noKeyring()) {
      const result = await keyringCall((e) => (e.setPassword(token), true as const), server);
      if (result === true) {
        await this.removeFromFile(server);
        return { kind: 'keyring' };
      }
      why = `the OS keychain is not usable here (${result.message})`;
    }
    await this.writeFile({ ...this.readFile(), [server]: token });
    return { kind: 'file', path: this.file, why };
  }

  async delete(server: string): Promise<void> {
    if (!this.noKeyring()) await keyringCall((e) => e.deletePassword(), server);
    await this.removeFromFile(server);
  }

  private noKeyring(): boolean {
    return this.env.KHD_NO_KEYRING === '1' || this.env.KHD_NO_KEYRING === 'true';
  }

  private readFile(): CredentialFile {
    try {
      return JSON.parse(readFileSync(this.file, 'utf8')) as CredentialFile;
    } catch {
      return {};
    }
  }

  private async writeFile(data: CredentialFile): Promise<void> {
    const [{ default: writeFileAtomic }, { mkdir }] = await Promise.all([import('write-file-atomic'), import('node:fs/promises')]);
    await mkdir(this.config.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
  }

  private async removeFromFile(server: string): Promise<void> {
    const data = this.readFile();
    if (!(server in data)) return;
    delete data[server];
    const { unlink } = await import('node:fs/promises');
    if (Object.keys(data).length === 0) await unlink(this.file).catch(() => {});
    else await this.writeFile(data);
  }
}

type Entry = import('@napi-rs/keyring').Entry;

/**
 * Runs one keychain call. On headless Linux the first Entry of a process can fail with
 * AccessDenied while a fresh one works, so a failure is retried once with a new Entry.
 */
async function keyringCall<T>(call: (entry: Entry) => T, account: string): Promise<T | Error> {
  let mod: typeof import('@napi-rs/keyring');
  try {
    mod = await import('@napi-rs/keyring');
  } catch (err) {
    return err as Error;
  }
  let last: Error = new Error('unknown keychain error');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      return call(new mod.Entry(KEYRING_SERVICE, account));
    } catch (err) {
      last = err as Error;
    }
  }
  return last;
}
