import { createHash, randomBytes } from 'node:crypto';

const TOKEN_PREFIX = 'khd_';

/** A fresh 256-bit bearer token; only its hash is ever stored. */
export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
