import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../store/db.js';
import { AccountStore } from '../store/accounts.js';
import { AuthService, LOGIN_FAILURES_PER_CLIENT, LOGIN_LOCK_MS, PASSWORD_CHECKS_AT_ONCE, PASSWORD_CHECKS_WAITING } from './auth-service.js';

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

  const attempt = (name: string, password: string, client?: string) =>
    auth.login(name, password, client).then(
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

  it('counts an attempt before its check: 50 at once against one name get 5 checks, the rest the lock', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => attempt('kim', 'wrong', `10.0.0.${i}`)));
    expect(answers.filter((a) => a.startsWith('KHD_BAD_CREDENTIALS'))).toHaveLength(5);
    expect(answers.filter((a) => a.startsWith('KHD_LOGIN_LOCKED'))).toHaveLength(45);
  });

  it('checks a few passwords at a time and refuses past the queue with 429 and Retry-After', async () => {
    type Refusal = { code: string; retryAfterSeconds?: number };
    const attempts = Array.from({ length: 40 }, (_, i) => auth.login(`name${i}`, 'x', `10.0.1.${i}`).then((): Refusal => ({ code: 'ok' }), (err: Refusal) => err));
    const answers = await Promise.all(attempts);
    const busy = answers.filter((a) => a.code === 'KHD_TOO_MANY_REQUESTS');
    expect(busy).toHaveLength(40 - PASSWORD_CHECKS_AT_ONCE - PASSWORD_CHECKS_WAITING);
    expect(busy[0]!.retryAfterSeconds).toBe(1);
    expect(answers.filter((a) => a.code === 'KHD_BAD_CREDENTIALS')).toHaveLength(PASSWORD_CHECKS_AT_ONCE + PASSWORD_CHECKS_WAITING);
  });

  it('limits one client address across names, and frees it after the window', async () => {
    for (let i = 0; i < LOGIN_FAILURES_PER_CLIENT; i++) expect(await attempt(`guess${i}`, 'x', '192.0.2.7')).toMatch(/^KHD_BAD_CREDENTIALS/);
    expect(await attempt('kim', 'kim-password', '192.0.2.7')).toBe(
      'KHD_TOO_MANY_REQUESTS: too many failed logins from this address: try again in 15 minutes (at 12:15 UTC)',
    );
    expect(await attempt('kim', 'kim-password', '192.0.2.8')).toBe('ok');
    now += LOGIN_LOCK_MS;
    expect(await attempt('admin', 'admin-password', '192.0.2.7')).toBe('ok');
  });
});
