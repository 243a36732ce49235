import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ExecResult, ExecSpec, Executor } from '../executor/executor.js';
import { openDb, type Db } from '../store/db.js';
import { EnvironmentStore } from '../store/environments.js';
import { EnvironmentService } from './environment-service.js';
import { Layers } from './layers.js';

const DAY = 24 * 3600 * 1000;

describe('EnvironmentService.sweep', () => {
  let dir: string;
  let db: Db;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'khd-envs-'));
    db = openDb(join(dir, 'khd.db'));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('removes layers no session used for the TTL, and what a stop left half built; keeps the rest', () => {
    const now = Date.UTC(2026, 11, 3);
    const root = join(dir, 'envs');
    const layer = (key: string, usedDaysAgo: number) => {
      mkdirSync(join(root, key, 'bin'), { recursive: true });
      writeFileSync(join(root, key, 'khd-layer.json'), '{"environment":"default","requirements":["x==1"]}');
      const at = new Date(now - usedDaysAgo * DAY);
      utimesSync(join(root, key, 'khd-layer.json'), at, at);
    };
    layer('old', 15);
    layer('recent', 3);
    mkdirSync(join(root, '.partial-abc-1234'), { recursive: true });
    const executor = { sandboxed: true, ownUids: false, enforcement: { memory: 'x' }, start: () => undefined as never } as unknown as Executor;
    const service = new EnvironmentService(new EnvironmentStore(db, () => now), executor, {
      root, defaultPython: { executable: '/usr/bin/python3', prefixes: ['/usr'], version: '3.11.2' }, layerTtlMs: 14 * DAY, now: () => now, warn: () => {},
    });
    return service.sweep().then((removed) => {
      expect(removed).toBe(1);
      expect(existsSync(join(root, 'old'))).toBe(false);
      expect(existsSync(join(root, 'recent'))).toBe(true);
      expect(existsSync(join(root, '.partial-abc-1234'))).toBe(false);
    });
  });
});

describe('Layers.sweep', () => {
  it('leaves the scratch folder of a run under way (a setup.py being read) alone', async () => {
    const root = mkdtempSync(join(tmpdir(), 'khd-layers-'));
    let finish: (r: ExecResult) => void = () => {};
    let workDir = '';
    const executor = {
      sandboxed: true, ownUids: false, enforcement: { memory: 'x' },
      start: (spec: ExecSpec) => {
        workDir = spec.workDir;
        return { result: new Promise<ExecResult>((resolve) => (finish = resolve)), stop: () => {} };
      },
    } as unknown as Executor;
    const layers = new Layers({ root, executor, now: Date.now });
    const hooks = { log: () => {}, running: () => {}, stopped: () => false };
    const running = layers.run({ 'setup.py': 'x' }, 'setup.py', { executable: '/usr/bin/python3', prefixes: [] }, [], false, {}, hooks, () => {});
    await expect.poll(() => workDir).not.toBe('');
    await layers.sweep(0);
    expect(existsSync(join(workDir, 'setup.py'))).toBe(true);
    finish({ exitCode: 0, signal: null, timedOut: false, stopped: false, startedAt: 0, endedAt: 0 });
    await running;
    expect(existsSync(workDir)).toBe(false);
    rmSync(root, { recursive: true, force: true });
  });
});
