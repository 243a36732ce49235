import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { UntrustedFileError } from '../../src/server/untrusted/session-files.js';

/**
 * A folder standing for what a session wrote (`root`), and one outside it holding what it must
 * not reach (`outside/test_label`), both fresh for each test.
 */
export function hostileFolders(): { root: () => string; outside: () => string } {
  let root = '';
  let outside = '';
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'khd-untrusted-'));
    outside = mkdtempSync(join(tmpdir(), 'khd-secret-'));
    writeFileSync(join(outside, 'test_label'), 'the hidden labels\n');
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });
  return { root: () => root, outside: () => outside };
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
