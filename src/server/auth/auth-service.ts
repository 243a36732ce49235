import { randomBytes } from 'node:crypto';
import { KhdError } from '../../protocol/errors.js';
import { checkName } from '../../protocol/session-name.js';
import type { AddUserRequest, LoginResponse } from '../../protocol/types.js';
import { ADMIN_USER, TOKEN_TTL_MS } from '../config.js';
import { toMe, type AccountStore, type UserRow } from '../store/accounts.js';
import { hashPassword, SCRYPT_PARAMS, verifyPassword } from './passwords.js';
import { newToken } from './tokens.js';

export const MIN_PASSWORD_LENGTH = 8;

// Verifying against this when the user does not exist keeps the timing of both refusals alike.
const DUMMY_HASH_PASSWORD = 'khd-no-such-user';

/** Failed logins in a row that lock an account name, and for how long. */
export const LOGIN_FAILURES_BEFORE_LOCK = 5;
export const LOGIN_LOCK_MS = 15 * 60 * 1000;

export interface AuthOptions {
  scrypt?: typeof SCRYPT_PARAMS;
  tokenTtlMs?: number;
  now?: () => number;
}

export class AuthService {
  private dummyHash: Promise<string> | undefined;
  /** Failed logins per account name (also names that do not exist, so a lock reveals nothing). */
  private readonly failures = new Map<string, { count: number; lockedUntil: number; last: number }>();

  constructor(
    private readonly accounts: AccountStore,
    private readonly options: AuthOptions = {},
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  async login(name: string, password: string): Promise<LoginResponse> {
    this.checkLock(name);
    const user = this.accounts.userByName(name);
    this.dummyHash ??= hashPassword(DUMMY_HASH_PASSWORD, this.options.scrypt);
    const ok = await verifyPassword(password, user?.passwordHash ?? (await this.dummyHash));
    if (!user || !ok) {
      this.recordFailure(name);
      throw new KhdError('KHD_BAD_CREDENTIALS', 'wrong user name or password');
    }
    this.failures.delete(name);
    const token = newToken();
    const expiresAt = this.accounts.addToken(user.id, token, this.options.tokenTtlMs ?? TOKEN_TTL_MS);
    return { token, expiresAt: new Date(expiresAt).toISOString(), me: toMe(user) };
  }

  /** While locked, even the right password is refused: guessing gets 5 tries per 15 minutes. */
  private checkLock(name: string): void {
    const entry = this.failures.get(name);
    if (!entry || entry.lockedUntil <= this.now()) return;
    const minutes = Math.ceil((entry.lockedUntil - this.now()) / 60_000);
    throw new KhdError(
      'KHD_LOGIN_LOCKED',
      `too many failed logins for '${name}': locked for ${minutes} more minute${minutes === 1 ? '' : 's'} (until ${new Date(entry.lockedUntil).toISOString().slice(11, 16)} UTC): try again then`,
    );
  }

  private recordFailure(name: string): void {
    const now = this.now();
    // Forget names whose last failure is older than a lock: the map cannot grow without end.
    if (this.failures.size > 10_000) {
      for (const [n, e] of this.failures) if (now - e.last > LOGIN_LOCK_MS) this.failures.delete(n);
    }
    const entry = this.failures.get(name);
    // A lock that is over gives the name a fresh count.
    const lockOver = entry !== undefined && entry.count >= LOGIN_FAILURES_BEFORE_LOCK && entry.lockedUntil <= now;
    const count = (lockOver ? 0 : (entry?.count ?? 0)) + 1;
    this.failures.set(name, { count, last: now, lockedUntil: count >= LOGIN_FAILURES_BEFORE_LOCK ? now + LOGIN_LOCK_MS : 0 });
  }

  authenticate(header: string | undefined): UserRow {
    const token = /^Bearer (\S+)$/.exec(header ?? '')?.[1];
    if (!token) throw new KhdError('KHD_UNAUTHENTICATED', 'not logged in: run khd login');
    const user = this.accounts.userForToken(token);
    if (user === 'expired') throw new KhdError('KHD_TOKEN_EXPIRED', 'your login has expired: run khd login');
    if (user === 'unknown') throw new KhdError('KHD_UNAUTHENTICATED', 'your token was revoked or is not valid here: run khd login');
    return user;
  }

  logout(header: string | undefined): void {
    const token = /^Bearer (\S+)$/.exec(header ?? '')?.[1];
    if (token) this.accounts.revokeToken(token);
  }

  async addUser(by: UserRow, req: AddUserRequest): Promise<UserRow> {
    if (!by.admin) throw new KhdError('KHD_FORBIDDEN', 'only an admin can add users');
    checkName('user', req.name);
    const team = checkName('team', req.team ?? req.name);
    if (req.password.length < MIN_PASSWORD_LENGTH) {
      throw new KhdError('KHD_BAD_REQUEST', `the password must have at least ${MIN_PASSWORD_LENGTH} characters`);
    }
    if (this.accounts.userByName(req.name)) throw new KhdError('KHD_USER_EXISTS', `user '${req.name}' already exists`);
    return this.accounts.addUser(req.name, team, req.admin ?? false, await hashPassword(req.password, this.options.scrypt));
  }

  /**
   * On an empty data dir: user `admin` in team `admin`, with the given password or a random one.
   * Returns the random password so it can be shown once; undefined when nothing was created.
   */
  async bootstrapAdmin(password: string | undefined): Promise<{ generated?: string } | undefined> {
    if (this.accounts.countUsers() > 0) return undefined;
    const chosen = password ?? randomBytes(18).toString('base64url');
    this.accounts.addUser(ADMIN_USER, ADMIN_USER, true, await hashPassword(chosen, this.options.scrypt));
    return password ? {} : { generated: chosen };
  }
}
