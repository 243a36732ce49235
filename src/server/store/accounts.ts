import type { Db } from './db.js';
import { KhdError } from '../../protocol/errors.js';
import type { Me } from '../../protocol/types.js';
import { hashToken } from '../auth/tokens.js';

export interface UserRow {
  id: number;
  name: string;
  team: string;
  teamId: number;
  admin: boolean;
  passwordHash: string;
}

const USER_SELECT = `SELECT u.id, u.name, t.name AS team, u.team_id AS teamId, u.is_admin AS admin,
  u.password_hash AS passwordHash FROM users u JOIN teams t ON t.id = u.team_id`;

function toUser(row: (Omit<UserRow, 'admin'> & { admin: number }) | undefined): UserRow | undefined {
  return row && { ...row, admin: row.admin === 1 };
}

export function toMe(user: UserRow): Me {
  return { user: user.name, team: user.team, admin: user.admin };
}

/** Users, teams and tokens. */
export class AccountStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  countUsers(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  }

  userByName(name: string): UserRow | undefined {
    return toUser(this.db.prepare(`${USER_SELECT} WHERE u.name = ?`).get(name) as never);
  }

  /** The names of a team's users: whose sessions a member sees and loads from. */
  teamMembers(teamId: number): string[] {
    return (this.db.prepare('SELECT name FROM users WHERE team_id = ? ORDER BY name').all(teamId) as { name: string }[]).map((r) => r.name);
  }

  listUsers(): UserRow[] {
    return (this.db.prepare(`${USER_SELECT} ORDER BY u.name`).all() as never[]).map((r) => toUser(r)!);
  }

  /** Creates the user, and the team when it does not exist yet (a team defaults to the user's name). */
  addUser(name: string, team: string, admin: boolean, passwordHash: string): UserRow {
    return this.db.transaction(() => {
      if (this.userByName(name)) throw new KhdError('KHD_USER_EXISTS', `user '${name}' already exists`);
      const now = this.now();
      this.db.prepare('INSERT OR IGNORE INTO teams (name, created_at) VALUES (?, ?)').run(team, now);
      const teamId = (this.db.prepare('SELECT id FROM teams WHERE name = ?').get(team) as { id: number }).id;
      this.db
        .prepare('INSERT INTO users (name, team_id, is_admin, password_hash, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(name, teamId, admin ? 1 : 0, passwordHash, now);
      return this.userByName(name)!;
    })();
  }

  addToken(userId: number, token: string, ttlMs: number): number {
    const now = this.now();
    const expiresAt = now + ttlMs;
    this.db
      .prepare('INSERT INTO tokens (user_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?)')
      .run(userId, hashToken(token), now, expiresAt);
    return expiresAt;
  }

  /** The token's user, or the reason it is refused. */
  userForToken(token: string): UserRow | 'expired' | 'unknown' {
    const row = this.db
      .prepare('SELECT user_id AS userId, expires_at AS expiresAt, revoked_at AS revokedAt FROM tokens WHERE token_hash = ?')
      .get(hashToken(token)) as { userId: number; expiresAt: number; revokedAt: number | null } | undefined;
    if (!row || row.revokedAt !== null) return 'unknown';
    if (row.expiresAt <= this.now()) return 'expired';
    return toUser(this.db.prepare(`${USER_SELECT} WHERE u.id = ?`).get(row.userId) as never) ?? 'unknown';
  }

  revokeToken(token: string): void {
    this.db.prepare('UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL').run(this.now(), hashToken(token));
  }
}
