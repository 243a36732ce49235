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
/**
 * Failed logins from one client address (any names) before it waits out the same window: high
 * enough for a room of participants behind one NAT mistyping at the start of a datathon.
 */
export const LOGIN_FAILURES_PER_CLIENT = 100;
/** Password checks (scrypt: ~128 MiB and ~0.3 s each) run at once, and how many may wait for one. */
export const PASSWORD_CHECKS_AT_ONCE = 2;
export const PASSWORD_CHECKS_WAITING = 16;

interface Attempts {
  /** Attempts counted (before their check), since the last success or the end of a lock. */
  count: number;
  lockedUntil: number;
  last: number;
}

export interface AuthOptions {
  scrypt?: typeof SCRYPT_PARAMS;
  tokenTtlMs?: number;
  now?: () => number;
}

export class AuthService {
  private dummyHash: Promise<string> | undefined;
  /** Login attempts per account name (also names that do not exist, so a lock reveals nothing). */
  private readonly failures = new Map<string, Attempts>();
  /** Login attempts per client address. */
  private readonly clients = new Map<string, Attempts>();
  private checking = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly accounts: AccountStore,
    private readonly options: AuthOptions = {},
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /**
   * Each attempt is counted, for the name and for the client, before its password is checked,
   * in the same synchronous step as the lock is looked at: however many arrive at once, at most
   * LOGIN_FAILURES_BEFORE_LOCK checks ever run for a name per window. Checks run a few at a
   * time; past the queue the answer is 429 with Retry-After.
   */
  async login(name: string, password: string, client = 'local'): Promise<LoginResponse> {
    this.count(this.failures, name, LOGIN_FAILURES_BEFORE_LOCK, (minutes, until) =>
      new KhdError('KHD_LOGIN_LOCKED', `too many failed logins for '${name}': locked for ${minutes} more minute${minutes === 1 ? '' : 's'} (until ${until} UTC): try again then`, minutes * 60));
    this.count(this.clients, client, LOGIN_FAILURES_PER_CLIENT, (minutes, until) =>
      new KhdError('KHD_TOO_MANY_REQUESTS', `too many failed logins from this address: try again in ${minutes} minute${minutes === 1 ? '' : 's'} (at ${until} UTC)`, minutes * 60));
    const user = this.accounts.userByName(name);
    const ok = await this.checkPassword(password, user?.passwordHash);
    if (!user || !ok) throw new KhdError('KHD_BAD_CREDENTIALS', 'wrong user name or password');
    this.failures.delete(name);
    this.clients.delete(client);
    const token = newToken();
    const expiresAt = this.accounts.addToken(user.id, token, this.options.tokenTtlMs ?? TOKEN_TTL_MS);
    return { token, expiresAt: new Date(expiresAt).toISOString(), me: toMe(user) };
  }

  /** scrypt a few at a time: a burst of logins queues instead of taking every core and all memory. */
  private async checkPassword(password: string, hash: string | undefined): Promise<boolean> {
    if (this.checking >= PASSWORD_CHECKS_AT_ONCE) {
      if (this.waiting.length >= PASSWORD_CHECKS_WAITING) {
        throw new KhdError('KHD_TOO_MANY_REQUESTS', 'the server is checking too many logins at once: try again in a moment', 1);
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.checking++;
    try {
      this.dummyHash ??= hashPassword(DUMMY_HASH_PASSWORD, this.options.scrypt);
      return await verifyPassword(password, hash ?? (await this.dummyHash));
    } finally {
      this.checking--;
      this.waiting.shift()?.();
    }
  }

  /**
   * Counts one attempt for `key`, or refuses it while the key is locked. The count is kept
   * until a success clears it; the limit'th attempt locks the key for LOGIN_LOCK_MS (even the
   * right password is refused then: guessing gets `limit` tries per window).
   */
  private count(map: Map<string, Attempts>, key: string, limit: number, locked: (minutes: number, until: string) => KhdError): void {
    const now = this.now();
    // Forget keys whose last attempt is older than a lock: the map cannot grow without end.
    if (map.size > 10_000) {
      for (const [k, e] of map) if (now - e.last > LOGIN_LOCK_MS) map.delete(k);
    }
    const entry = map.get(key);
    if (entry && entry.lockedUntil > now) {
      throw locked(Math.ceil((entry.lockedUntil - now) / 60_000), new Date(entry.lockedUntil).toISOString().slice(11, 16));
    }
    // A lock that is over gives the key a fresh count.
    const count = (entry && entry.lockedUntil === 0 ? entry.count : 0) + 1;
    map.set(key, { count, last: now, lockedUntil: count >= limit ? now + LOGIN_LOCK_MS : 0 });
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
