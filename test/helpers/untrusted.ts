import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { UntrustedFileError } from '../../src/server/untrusted/session-files.js';

/**
 * A folder standing for what a session wrote (`root`), and one outside it holding what it must
 * not reach (`outside/test_label`), both fresh for each test.
 */
export function hostileFolders(): { readonly root: string; readonly outside: string } {
  const dirs = { root: '', outside: '' };
  beforeEach(() => {
    dirs.root = mkdtempSync(join(tmpdir(), 'khd-untrusted-'));
    dirs.outside = mkdtempSync(join(tmpdir(), 'khd-secret-'));
    writeFileSync(join(dirs.outside, 'test_label'), 'the hidden labels\n');
  });
  afterEach(() => {
    rmSync(dirs.root, { recursive: true, force: true });
    rmSync(dirs.outside, { recursive: true, force: true });
  });
  return dirs;
}

/** The refusal `promise` ends with: its reason and message. */
export async function refusal(promise: Promise<unknown>): Promise<{ why: string; message: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UntrustedFileError);
  return { why: (err as UntrustedFileError).why, message: (err as Error).message };
}
