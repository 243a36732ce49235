import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../store/db.js';
import { AccountStore } from '../store/accounts.js';
import { AuthService, LOGIN_LOCK_MS } from './auth-service.js';

const SCRYPT = { N: 1024, r: 8, p: 1 } as const;

describe('login throttling', () => {
  let dir: string;
  let db: Db;
  let now: number;
  let auth: AuthService;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'khd-auth-'));
    db = openDb(join(dir, 'khd.db'));
    now = Date.UTC(2026, 10, 27, 12, 0);
    const clock = () => now;
    auth = new AuthService(new AccountStore(db, clock), { scrypt: SCRYPT, now: clock });
    await auth.bootstrapAdmin('admin-password');
    const admin = new AccountStore(db, clock).userByName('admin')!;
    await auth.addUser(admin, { name: 'kim', password: 'kim-password' });
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const attempt = (name: string, password: string) =>
    auth.login(name, password).then(
      () => 'ok',
      (err: { code: string; message: string }) => `${err.code}: ${err.message}`,
    );

  it('locks an account for 15 minutes after 5 failures in a row, even against the right password', async () => {
    for (let i = 0; i < 5; i++) expect(await attempt('kim', 'wrong')).toBe('KHD_BAD_CREDENTIALS: wrong user name or password');
    expect(await attempt('kim', 'kim-password')).toBe(
      "KHD_LOGIN_LOCKED: too many failed logins for 'kim': locked for 15 more minutes (until 12:15 UTC): try again then",
    );
    // Another account is not affected.
    expect(await attempt('admin', 'admin-password')).toBe('ok');
    now += LOGIN_LOCK_MS - 60_000;
    expect(await attempt('kim', 'kim-password')).toMatch(/locked for 1 more minute \(/);
    now += 60_000;
    expect(await attempt('kim', 'kim-password')).toBe('ok');
  });

  it('starts counting again after a successful login', async () => {
    for (let i = 0; i < 4; i++) await attempt('kim', 'wrong');
    expect(await attempt('kim', 'kim-password')).toBe('ok');
    for (let i = 0; i < 4; i++) await attempt('kim', 'wrong');
    expect(await attempt('kim', 'kim-password')).toBe('ok');
  });

  it('locks names that do not exist the same way, so a lock tells nothing', async () => {
    for (let i = 0; i < 5; i++) expect(await attempt('nobody', 'x')).toBe('KHD_BAD_CREDENTIALS: wrong user name or password');
    expect(await attempt('nobody', 'x')).toMatch(/^KHD_LOGIN_LOCKED: too many failed logins for 'nobody'/);
  });

  it('gives a locked account 5 more tries once the lock is over', async () => {
    for (let i = 0; i < 5; i++) await attempt('kim', 'wrong');
    now += LOGIN_LOCK_MS;
    for (let i = 0; i < 4; i++) expect(await attempt('kim', 'wrong')).toMatch(/^KHD_BAD_CREDENTIALS/);
    expect(await attempt('kim', 'wrong')).toMatch(/^KHD_BAD_CREDENTIALS/);
    expect(await attempt('kim', 'kim-password')).toMatch(/^KHD_LOGIN_LOCKED/);
  });
});
