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

export interface AuthOptions {
  scrypt?: typeof SCRYPT_PARAMS;
  tokenTtlMs?: number;
}

export class AuthService {
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly accounts: AccountStore,
    private readonly options: AuthOptions = {},
  ) {}

  async login(name: string, password: string): Promise<LoginResponse> {
    const user = this.accounts.userByName(name);
    this.dummyHash ??= hashPassword(DUMMY_HASH_PASSWORD, this.options.scrypt);
    const ok = await verifyPassword(password, user?.passwordHash ?? (await this.dummyHash));
    if (!user || !ok) throw new KhdError('KHD_BAD_CREDENTIALS', 'wrong user name or password');
    const token = newToken();
    const expiresAt = this.accounts.addToken(user.id, token, this.options.tokenTtlMs ?? TOKEN_TTL_MS);
    return { token, expiresAt: new Date(expiresAt).toISOString(), me: toMe(user) };
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
