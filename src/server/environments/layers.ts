import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lchown, mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Requirement } from '../../protocol/requirements.js';
import type { EnvironmentDetails } from '../../protocol/types.js';
import type { ExecLimits, ExecResult, Executor, Mount, PythonRuntime } from '../executor/executor.js';
import type { EnvironmentRow } from '../store/environments.js';

/** What an install or a setup.py run may use: the session's own limits. */
export type InstallLimits = Pick<ExecLimits, 'memoryBytes' | 'cpus' | 'wallMs'>;

/** A requirement that could not be installed: the session fails with it, before its code starts. */
export class InstallError extends Error {}

/** Hooks of the session being prepared: its log, and the install's execution (so a stop reaches it). */
export interface PrepareHooks {
  log: (lines: string[]) => void;
  running: (stop: () => void) => void;
  stopped: () => boolean;
}

export interface LayerOptions {
  root: string;
  executor: Executor;
  /** Where pip finds packages: an index (the install then has network) and/or a wheelhouse. */
  pipIndexUrl?: string;
  pipFindLinks?: string;
  now: () => number;
}

const LAYER_META = 'khd-layer.json';

/**
 * Package layers: a venv over an environment (its packages visible) with a project's
 * requirements installed, one per (environment, requirements), in the data dir's envs/. Built in
 * the sandbox, then the server's and read-only to sessions; two sessions needing the same new
 * layer build it once.
 */
export class Layers {
  private readonly building = new Map<string, Promise<string>>();
  /** Scratch folders of runs under way (a setup.py's install_requires): the sweep leaves them. */
  private readonly scratches = new Set<string>();

  constructor(private readonly o: LayerOptions) {}

  path(key: string): string {
    return join(this.o.root, key);
  }

  /** The layer `key`, built if need be (said in the session's log), or its cached copy. */
  async ensure(key: string, row: EnvironmentRow, runtime: PythonRuntime, missing: Requirement[], limits: InstallLimits, hooks: PrepareHooks): Promise<string> {
    if (this.meta(key)) {
      hooks.log([`khd: using cached packages for environment ${row.name} (${missing.length}: ${missing.map((r) => r.name).join(', ')})`]);
      const now = new Date(this.o.now());
      await utimes(join(this.path(key), LAYER_META), now, now).catch(() => {});
      return this.path(key);
    }
    let build = this.building.get(key);
    if (build) hooks.log([`khd: waiting for packages another session is installing for environment ${row.name}`]);
    else {
      build = this.build(key, row, runtime, missing, limits, hooks).finally(() => this.building.delete(key));
      this.building.set(key, build);
    }
    return build;
  }

  /** Builds a layer: a venv over the environment, the packages installed by pip, in the sandbox. */
  private async build(key: string, row: EnvironmentRow, runtime: PythonRuntime, missing: Requirement[], limits: InstallLimits, hooks: PrepareHooks): Promise<string> {
    const staging = join(this.o.root, `.partial-${key}-${randomBytes(4).toString('hex')}`);
    hooks.log([`Installing ${missing.length} package${missing.length === 1 ? '' : 's'} for environment ${row.name}: ${missing.map((r) => r.text).join(', ')}`]);
    const started = this.o.now();
    await mkdir(staging, { recursive: true, mode: 0o755 });
    try {
      const pip = [
        ...(this.o.pipIndexUrl ? ['--index-url', this.o.pipIndexUrl] : ['--no-index']),
        ...(this.o.pipFindLinks ? ['--find-links', this.o.pipFindLinks] : []),
      ];
      const mounts: Mount[] = [{ host: staging, inside: staging, writable: true }];
      if (this.o.pipFindLinks) mounts.push({ host: this.o.pipFindLinks, inside: this.o.pipFindLinks, writable: false });
      const errors: string[] = [];
      const files = { 'khd_install.py': INSTALLER, 'install.json': JSON.stringify({ layer: staging, pip, requirements: missing.map((r) => r.text) }) };
      const result = await this.run(files, 'khd_install.py', runtime, mounts, Boolean(this.o.pipIndexUrl), limits, hooks, (lines) => {
        hooks.log(lines);
        errors.push(...lines.filter((l) => l.startsWith('ERROR: ')));
      });
      if (hooks.stopped()) throw new InstallError('stopped while installing its requirements');
      if (result.exitCode !== 0) {
        throw new InstallError(`could not install its requirements: ${errors.at(-1)?.slice('ERROR: '.length) ?? `pip exited ${result.exitCode ?? result.signal}`}`);
      }
      await writeFile(join(staging, LAYER_META), JSON.stringify({ environment: row.name, python: row.python, requirements: missing.map((r) => r.text) }));
      // The layer is the server's from now on: no session uid can change what others will mount.
      if (process.getuid?.() === 0) await ownAll(staging);
      await rename(staging, this.path(key));
      hooks.log([`khd: installed in ${((this.o.now() - started) / 1000).toFixed(1)} s`]);
      return this.path(key);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * Runs `entry` of a scratch folder holding `files`, in the sandbox as a session would be
   * (with network only when asked), its output to `onLines`; a stop of the session reaches it.
   */
  async run(
    files: Record<string, string>, entry: string, python: PythonRuntime, mounts: Mount[], network: boolean,
    limits: InstallLimits, hooks: PrepareHooks, onLines: (lines: string[]) => void,
  ): Promise<ExecResult> {
    const scratch = join(this.o.root, `.run-${randomBytes(6).toString('hex')}`);
    this.scratches.add(scratch);
    try {
      await mkdir(scratch, { recursive: true });
      for (const [name, text] of Object.entries(files)) await writeFile(join(scratch, name), text);
      const execution = this.o.executor.start(
        { workDir: scratch, datasetName: null, datasetParts: [], mounts, env: { PIP_NO_CACHE_DIR: '1' }, sessionName: 'install', entry, args: [], gpuIds: [], python, network, limits },
        (_stream, lines) => onLines(lines),
      );
      hooks.running(() => execution.stop());
      return await execution.result;
    } finally {
      await rm(scratch, { recursive: true, force: true });
      this.scratches.delete(scratch);
    }
  }

  meta(key: string): { environment: string; requirements: string[] } | null {
    if (key.startsWith('.')) return null;
    try {
      return JSON.parse(readFileSync(join(this.path(key), LAYER_META), 'utf8')) as { environment: string; requirements: string[] };
    } catch {
      return null;
    }
  }

  async list(): Promise<EnvironmentDetails['layers']> {
    const layers: EnvironmentDetails['layers'] = [];
    for (const key of await readdir(this.o.root).catch(() => [] as string[])) {
      const meta = this.meta(key);
      if (!meta) continue;
      const lastUsed = (await stat(join(this.path(key), LAYER_META))).mtime.toISOString();
      layers.push({ key, environment: meta.environment, requirements: meta.requirements, size: await sizeOf(this.path(key)), lastUsed });
    }
    return layers;
  }

  /** Removes layers no session used for `ttlMs`, and what a stop left half built. */
  async sweep(ttlMs: number): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.o.root).catch(() => [] as string[])) {
      const path = join(this.o.root, name);
      if (name.startsWith('.')) {
        const inUse = this.scratches.has(path) || [...this.building.keys()].some((k) => name.includes(k));
        if (!inUse) await rm(path, { recursive: true, force: true });
        continue;
      }
      const used = (await stat(join(path, LAYER_META)).catch(() => undefined))?.mtimeMs ?? 0;
      if (this.o.now() - used > ttlMs && !this.building.has(name)) {
        await rm(path, { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }
}

/** Root's, every entry of a finished layer (links changed themselves, never followed). */
async function ownAll(dir: string): Promise<void> {
  await lchown(dir, 0, 0);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await ownAll(path);
    else await lchown(path, 0, 0);
  }
}

async function sizeOf(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await sizeOf(path);
    else if (entry.isFile()) total += (await stat(path)).size;
  }
  return total;
}

/** Runs in the sandbox: a venv over the environment (its packages visible), then pip into it. */
const INSTALLER = String.raw`
import json, os, subprocess, sys
spec = json.load(open('install.json'))
layer = spec['layer']
subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages', '--without-pip', layer], check=True)
python = os.path.join(layer, 'bin', 'python')
# Wheels only: no package's setup.py runs at install time, where the install may have network.
cmd = [python, '-m', 'pip', 'install', '--no-input', '--disable-pip-version-check', '--no-cache-dir', '--progress-bar', 'off', '--only-binary', ':all:'] + spec['pip'] + spec['requirements']
sys.exit(subprocess.run(cmd).returncode)
`;
