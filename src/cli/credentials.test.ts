import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Config } from './config.js';
import { Credentials } from './credentials.js';

const SERVER = 'http://127.0.0.1:9';

describe('credentials', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'khd-cred-'));
    env = { KHD_CONFIG_DIR: dir };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('gives up a keychain that does not answer, and writes a 0600 file instead, saying why', async () => {
    const hanging = class {
      getPassword = () => new Promise(() => {});
      setPassword = () => new Promise(() => {});
      deletePassword = () => new Promise(() => {});
    };
    const keyring = async () => ({ AsyncEntry: hanging }) as unknown as typeof import('@napi-rs/keyring');
    const creds = new Credentials(new Config(env), env, keyring, 200);
    // The keychain never answers: only the 0.2 s limit lets set() return at all.
    const where = await creds.set(SERVER, 'khd_token');
    expect(where).toEqual({ kind: 'file', path: join(dir, 'credentials.json'), why: 'the OS keychain is not usable here (it did not answer within 0.2 s)' });
    expect(statSync(join(dir, 'credentials.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8'))).toEqual({ [SERVER]: 'khd_token' });
  });

  it('refuses a credential file others can read, saying how to fix it', async () => {
    writeFileSync(join(dir, 'credentials.json'), JSON.stringify({ [SERVER]: 'khd_token' }), { mode: 0o644 });
    chmodSync(join(dir, 'credentials.json'), 0o644);
    const creds = new Credentials(new Config(env), { ...env, KHD_NO_KEYRING: '1' });
    await expect(creds.get(SERVER)).rejects.toThrow(`${join(dir, 'credentials.json')} can be read by others (mode 0644): run chmod 600 ${join(dir, 'credentials.json')}`);
  });

  it('refuses a credential file that is a symbolic link', async () => {
    writeFileSync(join(dir, 'elsewhere.json'), JSON.stringify({ [SERVER]: 'khd_token' }), { mode: 0o600 });
    symlinkSync(join(dir, 'elsewhere.json'), join(dir, 'credentials.json'));
    const creds = new Credentials(new Config(env), { ...env, KHD_NO_KEYRING: '1' });
    await expect(creds.get(SERVER)).rejects.toThrow(/credentials.json is a symbolic link: khd does not follow it for tokens; remove it/);
    await expect(creds.set(SERVER, 'new')).rejects.toThrow(/is a symbolic link/);
    expect(readFileSync(join(dir, 'elsewhere.json'), 'utf8')).toContain('khd_token');
  });
});
