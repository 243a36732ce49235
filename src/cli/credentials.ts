import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';
import { CliError } from './errors.js';

export const KEYRING_SERVICE = 'khd';
/** A keychain that does not answer in this long is given up for the file. */
export const KEYRING_TIMEOUT_MS = 3000;

type KeyringModule = typeof import('@napi-rs/keyring');

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
    private readonly keyring: () => Promise<KeyringModule> = () => import('@napi-rs/keyring'),
    private readonly keyringTimeoutMs = KEYRING_TIMEOUT_MS,
  ) {}

  get file(): string {
    return join(this.config.dir, 'credentials.json');
  }

  async get(server: string): Promise<string | undefined> {
    if (this.env.KHD_TOKEN) return this.env.KHD_TOKEN;
    const cfg = this.config.read();
    if (cfg.credentialStore === 'keyring' && cfg.server === server && !this.noKeyring()) {
      const token = await this.keyringCall((e, signal) => e.getPassword(signal), server);
      if (typeof token === 'string') return token;
    }
    return this.readFile()[server];
  }

  async set(server: string, token: string): Promise<StoredWhere> {
    let why = 'KHD_NO_KEYRING is set';
    if (!this.noKeyring()) {
      const result = await this.keyringCall((e, signal) => e.setPassword(token, signal).then(() => true as const), server);
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
    if (!this.noKeyring()) await this.keyringCall((e, signal) => e.deletePassword(signal), server);
    await this.removeFromFile(server);
  }

  private noKeyring(): boolean {
    return this.env.KHD_NO_KEYRING === '1' || this.env.KHD_NO_KEYRING === 'true';
  }

  /**
   * The credential file, refused when it is a symbolic link (a token could be written where
   * someone else reads it) or when others may read it.
   */
  private readFile(): CredentialFile {
    let st;
    try {
      st = lstatSync(this.file);
    } catch {
      return {};
    }
    if (st.isSymbolicLink()) {
      throw new CliError(`${this.file} is a symbolic link: khd does not follow it for tokens; remove it (rm ${this.file}) and run khd login`);
    }
    if (st.mode & 0o077) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new CliError(`${this.file} can be read by others (mode ${mode}): run chmod 600 ${this.file}, then khd login if the token may have leaked`);
    }
    try {
      return JSON.parse(readFileSync(this.file, 'utf8')) as CredentialFile;
    } catch {
      return {};
    }
  }

  /**
   * Runs one keychain call, given up after the timeout (a locked or absent secret service can
   * hang). On headless Linux the first Entry of a process can fail with AccessDenied while a
   * fresh one works, so a failure is retried once with a new Entry.
   */
  private async keyringCall<T>(call: (entry: AsyncEntry, signal: AbortSignal) => Promise<T>, account: string): Promise<T | Error> {
    let mod: KeyringModule;
    try {
      mod = await this.keyring();
    } catch (err) {
      return err as Error;
    }
    const signal = AbortSignal.timeout(this.keyringTimeoutMs);
    const gaveUp = () => new Error(`it did not answer within ${this.keyringTimeoutMs / 1000} s`);
    // The signal asks the call to stop; the race answers now even if the call does not.
    const timedOut = new Promise<Error>((resolve) => signal.addEventListener('abort', () => resolve(gaveUp()), { once: true }));
    let last: Error = new Error('unknown keychain error');
    for (let attempt = 0; attempt < 2 && !signal.aborted; attempt++) {
      try {
        return await Promise.race([call(new mod.AsyncEntry(KEYRING_SERVICE, account), signal), timedOut]);
      } catch (err) {
        last = err as Error;
      }
    }
    return signal.aborted ? gaveUp() : last;
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

type AsyncEntry = import('@napi-rs/keyring').AsyncEntry;
