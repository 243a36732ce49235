import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import { newToken } from '../../src/server/auth/tokens.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let admin: Participant;
beforeAll(async () => {
  server = await startTestServer();
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
});
afterAll(async () => {
  admin.cleanup();
  await server.stop();
});

describe('login, whoami, logout', () => {
  it('stores the token in a 0600 file when the keychain is off, and says so', async () => {
    const p = new Participant(server.url);
    const r = await p.khd(['login', '-u', 'admin', '--password-stdin'], { input: `${ADMIN_PASSWORD}\n` });
    expect(r.code).toBe(EXIT.ok);
    expect(r.stderr).toContain(`✓ Logged in to ${server.url} as admin (team admin)`);
    const file = join(p.configDir, 'credentials.json');
    expect(r.stderr).toContain(`token stored in ${file} (mode 0600)`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))[server.url]).toMatch(/^khd_/);
    const who = await p.khd(['whoami']);
    expect(who.stdout).toBe(`admin (team admin, admin) at ${server.url}\n`);
    p.cleanup();
  });

  it.each([
    ['a wrong password', 'admin', 'wrong-password'],
    ['a user that does not exist (the same answer)', 'nobody', 'whatever1'],
  ])('refuses %s with exit 4 and stores nothing', async (_what, user, password) => {
    const p = new Participant(server.url);
    const r = await p.khd(['login', '-u', user, '--password-stdin'], { input: `${password}\n` });
    expect(r.code).toBe(EXIT.auth);
    expect(r.stderr).toBe('error: wrong user name or password\n');
    expect(() => statSync(join(p.configDir, 'credentials.json'))).toThrow();
    p.cleanup();
  });

  it('logout revokes the token on the server, not only here', async () => {
    const p = new Participant(server.url);
    await p.login('admin', ADMIN_PASSWORD);
    const token = JSON.parse(readFileSync(join(p.configDir, 'credentials.json'), 'utf8'))[server.url] as string;
    const out = await p.khd(['logout']);
    expect(out.stderr).toContain(`✓ Logged out of ${server.url}`);
    const reuse = await p.khd(['whoami'], { env: { KHD_TOKEN: token } });
    expect(reuse.code).toBe(EXIT.auth);
    expect(reuse.stderr).toContain('revoked');
    expect(reuse.stderr).toContain('run khd login');
    const after = await p.khd(['whoami']);
    expect(after.code).toBe(EXIT.auth);
    expect(after.stderr).toBe(`error: not logged in to ${server.url}: run khd login\n`);
    p.cleanup();
  });

  it('refuses an expired token with exit 4 and says to log in', async () => {
    const user = server.services.accounts.userByName('admin')!;
    const token = newToken();
    server.services.accounts.addToken(user.id, token, -1000);
    const r = await admin.khd(['whoami'], { env: { KHD_TOKEN: token } });
    expect(r.code).toBe(EXIT.auth);
    expect(r.stderr).toBe('error: your login has expired: run khd login\n');
  });

  it('says which URL it tried when the server is down', async () => {
    const p = new Participant('http://127.0.0.1:9');
    const r = await p.khd(['login', '-u', 'admin', '--password-stdin'], { input: 'x\n' });
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toContain('cannot reach the khd server at http://127.0.0.1:9 (ECONNREFUSED)');
    p.cleanup();
  });

  it('uses the OS keychain when it can, else the file, and says which', async () => {
    const p = new Participant(server.url, { KHD_NO_KEYRING: '' });
    const r = await p.khd(['login', '-u', 'admin', '--password-stdin'], { input: ADMIN_PASSWORD });
    expect(r.code).toBe(EXIT.ok);
    expect(r.stderr).toMatch(/token stored in (the OS keychain|.*credentials\.json \(mode 0600\): the OS keychain is not usable)/);
    expect((await p.khd(['whoami'])).code).toBe(EXIT.ok);
    expect((await p.khd(['logout'])).code).toBe(EXIT.ok);
    expect((await p.khd(['whoami'])).code).toBe(EXIT.auth);
    p.cleanup();
  });
});

describe('khd user add', () => {
  it('lets an admin create a participant who can then log in', async () => {
    const r = await admin.khd(['user', 'add', 'kim', '--team', 'team-a', '--password-stdin'], { input: 'kim-password\n' });
    expect(r.code).toBe(EXIT.ok);
    expect(r.stderr).toBe('✓ Created user kim in team team-a\n');
    const kim = new Participant(server.url);
    await kim.login('kim', 'kim-password');
    expect((await kim.khd(['whoami'])).stdout).toBe(`kim (team team-a) at ${server.url}\n`);

    const again = await admin.khd(['user', 'add', 'kim', '--password-stdin'], { input: 'kim-password\n' });
    expect(again.code).toBe(EXIT.failure);
    expect(again.stderr).toBe("error: user 'kim' already exists\n");

    const byKim = await kim.khd(['user', 'add', 'lee', '--password-stdin'], { input: 'lee-password\n' });
    expect(byKim.code).toBe(EXIT.failure);
    expect(byKim.stderr).toBe('error: only an admin can add users\n');

    // khd user ls: the accounts and their teams, for admins only.
    const ls = await admin.khd(['user', 'ls']);
    expect(ls.stdout).toBe('User   Team    Role\nadmin  admin   admin\nkim    team-a  participant\n');
    expect(JSON.parse((await admin.khd(['user', 'ls', '--json'])).stdout)).toEqual([
      { user: 'admin', team: 'admin', admin: true },
      { user: 'kim', team: 'team-a', admin: false },
    ]);
    const lsByKim = await kim.khd(['user', 'ls']);
    expect(lsByKim.code).toBe(EXIT.failure);
    expect(lsByKim.stderr).toBe('error: only an admin can list users\n');
    kim.cleanup();
  });

  it('refuses a short password and a bad name, saying what is allowed', async () => {
    const short = await admin.khd(['user', 'add', 'park', '--password-stdin'], { input: 'short\n' });
    expect(short.stderr).toBe('error: the password must have at least 8 characters\n');
    const bad = await admin.khd(['user', 'add', '../x', '--password-stdin'], { input: 'long-enough\n' });
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.stderr).toContain("invalid user name '../x'");
  });

  it('refuses to prompt without a terminal', async () => {
    const r = await admin.khd(['user', 'add', 'park']);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toContain('no terminal to ask for the password');
  });
});
