// A tripwire for the one rule of security.md: a server module that names a folder sessions
// write into (a work folder, checkpoints, the events file, a submit's output) reads nothing there
// with node:fs itself; it goes through untrusted/. A new module that does is named here, and
// either uses untrusted/ or is added below with the reason it is safe.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SERVER = fileURLToPath(new URL('..', import.meta.url));

/** Calls that name what a session writes. */
const SESSION_WRITTEN = /\b(dataDir\.(work|checkpoints|userCheckpoints|events|state|submitOutput)|checkpointDir|stateMount)\(/;

/** node:fs calls that read, list, stat or copy. */
const READS = new Set([
  'readFile', 'readFileSync', 'createReadStream', 'open', 'openSync', 'readdir', 'readdirSync', 'opendir', 'opendirSync',
  'stat', 'statSync', 'lstat', 'lstatSync', 'existsSync', 'access', 'accessSync', 'copyFile', 'copyFileSync', 'cp', 'cpSync',
  'readlink', 'readlinkSync', 'realpath', 'realpathSync',
]);

/** The modules allowed both, and why what they read is not the session's. */
const ALLOWED: Record<string, string> = {
  'submits/submit-service.ts': "existsSync of the organiser's dataset files, readdirSync of the sessions root's names (the server's)",
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'untrusted' ? [] : sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

function fsReads(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'node:fs(?:\/promises)?'/g)) {
    for (const part of m[1]!.split(',')) {
      const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]!;
      if (READS.has(name)) names.push(name);
    }
  }
  return names;
}

describe('what sessions write', () => {
  it('is read only through untrusted/, but where a reason is written down', () => {
    const offenders: string[] = [];
    for (const file of sources(SERVER)) {
      const text = readFileSync(file, 'utf8');
      const reads = fsReads(text);
      const name = relative(SERVER, file);
      if (SESSION_WRITTEN.test(text) && reads.length > 0 && !ALLOWED[name]) offenders.push(`${name}: ${reads.join(', ')}`);
    }
    expect(offenders).toEqual([]);
  });

  it('names only modules that still need the exception', () => {
    for (const name of Object.keys(ALLOWED)) {
      const text = readFileSync(join(SERVER, name), 'utf8');
      expect(SESSION_WRITTEN.test(text) && fsReads(text).length > 0, name).toBe(true);
    }
  });
});
