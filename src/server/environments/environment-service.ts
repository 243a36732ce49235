import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { lchown, mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import picomatch from 'picomatch';
import { KhdError } from '../../protocol/errors.js';
import { IMAGE_FILES, imageLine, normalise, parseRequirement, parseRequirementsTxt, type Requirement } from '../../protocol/requirements.js';
import { checkName } from '../../protocol/session-name.js';
import type { AddEnvironmentRequest, EnvironmentDetails, EnvironmentInfo } from '../../protocol/types.js';
import type { ExecResult, Executor, Mount, PythonRuntime } from '../executor/executor.js';
import { resolvePython, type PythonInfo } from '../executor/python.js';
import type { UserRow } from '../store/accounts.js';
import { toInfo, type EnvironmentRow, type EnvironmentStore, type ProbedInfo } from '../store/environments.js';
import { installRequiresOf, probe } from './probe.js';

/** The built-in environment: the server's own `--python`. */
export const DEFAULT_ENVIRONMENT = 'default';
/** Layers no session used for this long are removed by the sweep. */
export const DEFAULT_LAYER_TTL_MS = 14 * 24 * 3600 * 1000;
/** A requirements file or setup.py larger than this is not a requirements file. */
const MAX_REQUIREMENTS_BYTES = 1024 * 1024;
const SYSTEM_PACKAGES_FILE = 'nsml_package.txt';

export interface EnvironmentOptions {
  /** Where layers live (the data dir's envs/). */
  root: string;
  defaultPython: PythonInfo;
  /** Where pip finds packages: an index (the install then has network) and/or a wheelhouse. */
  pipIndexUrl?: string;
  pipFindLinks?: string;
  layerTtlMs?: number;
  now: () => number;
  warn: (message: string) => void;
  /** Whether a Debian package is installed (dpkg); injectable for tests. */
  hasSystemPackage?: (name: string) => boolean;
}

/** What a session runs on once its environment is ready. */
export interface Prepared {
  python: PythonRuntime;
  /** The environment's name, for the log and for submits. */
  environment: string;
}

/** A requirement that could not be installed: the session fails with it, before its code starts. */
export class InstallError extends Error {}

/** Hooks of the session being prepared: its log, and the install's execution (so a stop reaches it). */
export interface PrepareHooks {
  log: (lines: string[]) => void;
  running: (stop: () => void) => void;
  stopped: () => boolean;
}

/**
 * Environments: the Python stacks sessions run on, registered by the organiser; the `#nsml:`
 * line of a project chooses one by alias. A project's own requirements are installed into a
 * layer on top of its environment (a venv that sees the environment's packages), cached by
 * (environment, requirements), built in the sandbox, and mounted read-only into sessions.
 */
export class EnvironmentService {
  private defaultInfo: ProbedInfo = { version: null, installed: {}, gpus: false };
  private readonly building = new Map<string, Promise<string>>();
  /** Registered interpreters, resolved once (where they live, their prefixes). */
  private readonly runtimes = new Map<string, PythonRuntime>();

  constructor(
    private readonly store: EnvironmentStore,
    private readonly executor: Executor,
    private readonly o: EnvironmentOptions,
  ) {}

  /** Probes the built-in environment (in the background at start: `env ls` shows it once known). */
  async start(): Promise<void> {
    this.defaultInfo = await probe(this.o.defaultPython.executable).catch((err: Error) => {
      this.o.warn(`could not probe the default Python (${err.message})`);
      return this.defaultInfo;
    });
  }

  private builtIn(): EnvironmentRow {
    return { name: DEFAULT_ENVIRONMENT, python: this.o.defaultPython.executable, aliases: [], isDefault: true, description: "the server's --python", info: this.defaultInfo };
  }

  private all(): { row: EnvironmentRow; builtIn: boolean }[] {
    return [{ row: this.builtIn(), builtIn: true }, ...this.store.list().map((row) => ({ row, builtIn: false }))];
  }

  /** The environment sessions get when nothing chooses another: one added with --default, else the built-in. */
  private defaultRow(): EnvironmentRow {
    return this.store.list().find((e) => e.isDefault) ?? this.builtIn();
  }

  list(): EnvironmentInfo[] {
    const def = this.defaultRow().name;
    return this.all().map(({ row, builtIn }) => toInfo(row, builtIn, row.name === def));
  }

  async details(user: UserRow): Promise<EnvironmentDetails> {
    if (!user.admin) throw new KhdError('KHD_FORBIDDEN', 'only an admin can see the package layers');
    const layers: EnvironmentDetails['layers'] = [];
    for (const key of await readdir(this.o.root).catch(() => [] as string[])) {
      const meta = this.layerMeta(key);
      if (!meta) continue;
      layers.push({ key, environment: meta.environment, requirements: meta.requirements, size: await sizeOf(join(this.o.root, key)), lastUsed: (await stat(join(this.o.root, key, LAYER_META))).mtime.toISOString() });
    }
    return { layers, missingSystemPackages: this.store.missing() };
  }

  async add(user: UserRow, req: AddEnvironmentRequest): Promise<EnvironmentInfo> {
    if (!user.admin) throw new KhdError('KHD_FORBIDDEN', 'only an admin can add environments');
    const name = checkName('environment', req.name);
    if (name === DEFAULT_ENVIRONMENT || this.store.byName(name)) throw new KhdError('KHD_ENVIRONMENT_EXISTS', `environment '${name}' already exists: remove it first, or choose another name`);
    for (const alias of req.aliases ?? []) {
      if (!alias.trim() || alias.length > 256) throw new KhdError('KHD_BAD_REQUEST', `alias '${alias.slice(0, 40)}' is not an image pattern: use e.g. 'nsml/ml:cuda9*'`);
    }
    let python: PythonInfo;
    try {
      python = resolvePython(req.python);
    } catch (err) {
      throw new KhdError('KHD_BAD_REQUEST', (err as Error).message.replace('or pass --python PATH', 'or give the path of a Python 3 interpreter'));
    }
    const info = await probe(python.executable);
    const row: EnvironmentRow = { name, python: python.executable, aliases: req.aliases ?? [], isDefault: req.default ?? false, description: req.description ?? '', info };
    this.store.insert(row);
    return toInfo(row, false, this.defaultRow().name === name);
  }

  remove(user: UserRow, name: string): void {
    if (!user.admin) throw new KhdError('KHD_FORBIDDEN', 'only an admin can remove environments');
    if (name === DEFAULT_ENVIRONMENT) throw new KhdError('KHD_BAD_REQUEST', "the default environment is the server's --python: it cannot be removed");
    if (!this.store.remove(name)) throw new KhdError('KHD_ENVIRONMENT_NOT_FOUND', `environment '${name}' does not exist: see khd env ls`);
  }

  /** Refuses an environment that does not exist before anything is uploaded or started. */
  check(name: string | null | undefined): void {
    if (name && name !== DEFAULT_ENVIRONMENT && !this.store.byName(name)) {
      throw new KhdError('KHD_ENVIRONMENT_NOT_FOUND', `environment '${name}' does not exist: see khd env ls`);
    }
  }

  /**
   * The environment a project runs on: the one asked for, else the first alias the `#nsml:`
   * image matches, else the default, with a line saying so when an image matched nothing.
   */
  choose(tree: string, asked: string | null): { row: EnvironmentRow; note: string | null } {
    if (asked) {
      const row = asked === DEFAULT_ENVIRONMENT ? this.builtIn() : this.store.byName(asked);
      if (!row) throw new InstallError(`environment '${asked}' no longer exists (khd env ls)`);
      return { row, note: null };
    }
    const image = IMAGE_FILES.map((f) => readSmall(join(tree, f))).map((t) => (t === null ? null : imageLine(t))).find((i) => i !== null) ?? null;
    if (!image) return { row: this.defaultRow(), note: null };
    const matched = this.store.list().find((e) => e.aliases.some((a) => picomatch.isMatch(image, a)));
    if (matched) return { row: matched, note: `khd: #nsml: ${image} → environment ${matched.name}` };
    const def = this.defaultRow();
    return {
      row: def,
      note: `khd: #nsml: ${image} names no environment of this server: running on ${def.name} (Python ${def.info.version ?? '?'}). ` +
        `The organiser can add one: khd env add NAME --python PATH --alias '${image.replace(/[:@].*$/, '')}*'`,
    };
  }

  /**
   * Makes the session's environment ready: chooses it, reads the project's requirements, and
   * installs those the environment lacks into a cached layer (built once per environment and
   * requirements). Says what it does in the session's log.
   */
  async prepare(tree: string, asked: string | null, limits: { memoryBytes?: number; cpus?: number; wallMs?: number }, hooks: PrepareHooks): Promise<Prepared> {
    const { row, note } = this.choose(tree, asked);
    if (note) hooks.log([note]);
    this.reportSystemPackages(tree, hooks);
    const runtime = this.runtimeOf(row);
    const wanted = await this.requirementsOf(tree, runtime, limits, hooks);
    const missing: Requirement[] = [];
    for (const r of wanted) {
      // A URL is the project's choice of a download: only the organiser's index or wheelhouse is used.
      if (r.text.includes(' @ ')) {
        hooks.log([`khd: ${r.text}: packages come from the organiser's index or wheelhouse, not from a URL: left out`]);
        continue;
      }
      const have = row.info.installed[r.name];
      // The organiser's build of a package is never replaced by a download: it stays, whatever the pin.
      if (have) hooks.log([`khd: ${r.text} left to ${row.name}'s ${r.name} ${have}`]);
      else missing.push(r);
    }
    if (missing.length === 0) return { python: runtime, environment: row.name };
    const key = createHash('sha256').update(JSON.stringify([row.name, row.python, missing.map((r) => r.text)])).digest('hex').slice(0, 32);
    const layer = join(this.o.root, key);
    if (this.layerMeta(key)) {
      hooks.log([`khd: using cached packages for environment ${row.name} (${missing.length}: ${missing.map((r) => r.name).join(', ')})`]);
      await this.touch(key);
    } else {
      let build = this.building.get(key);
      if (!build) {
        build = this.build(key, row, runtime, missing, limits, hooks).finally(() => this.building.delete(key));
        this.building.set(key, build);
      } else {
        hooks.log([`khd: waiting for packages another session is installing for environment ${row.name}`]);
      }
      await build;
    }
    return { python: { executable: join(layer, 'bin', 'python'), prefixes: [...runtime.prefixes, layer] }, environment: row.name };
  }

  private runtimeOf(row: EnvironmentRow): PythonRuntime {
    if (row.name === DEFAULT_ENVIRONMENT && row.python === this.o.defaultPython.executable) return this.o.defaultPython;
    let known = this.runtimes.get(row.python);
    if (!known) {
      try {
        known = resolvePython(row.python);
      } catch (err) {
        throw new InstallError(`environment ${row.name} cannot run its Python (${(err as Error).message.split(':')[0]}): the organiser must fix or remove it`);
      }
      this.runtimes.set(row.python, known);
    }
    return known;
  }

  /** requirements.txt (with its -r includes) and setup.py's install_requires, normalised. */
  private async requirementsOf(tree: string, runtime: PythonRuntime, limits: Parameters<EnvironmentService['prepare']>[2], hooks: PrepareHooks): Promise<Requirement[]> {
    const found: Requirement[] = [];
    const seen = new Set<string>();
    const readTxt = (rel: string) => {
      if (seen.has(rel) || seen.size > 16) return;
      seen.add(rel);
      const text = readSmall(join(tree, rel));
      if (text === null) {
        if (rel !== 'requirements.txt') hooks.log([`khd: ${rel}, included with -r, is not in the upload: left out`]);
        return;
      }
      const parsed = parseRequirementsTxt(text);
      found.push(...parsed.requirements);
      for (const why of parsed.ignored) hooks.log([`khd: ${rel}: ${why}`]);
      for (const inc of parsed.includes) if (!inc.startsWith('/') && !inc.split('/').includes('..')) readTxt(inc);
    };
    readTxt('requirements.txt');
    const setup = readSmall(join(tree, 'setup.py'));
    if (setup !== null) {
      const parsed = await installRequiresOf(runtime.executable, setup);
      if (parsed.kind === 'literal') found.push(...parsed.requirements.map(parseRequirement).filter((r): r is Requirement => r !== null));
      else if (parsed.kind === 'error') hooks.log([`khd: ${parsed.why}: its install_requires are left out`]);
      else if (parsed.kind === 'computed') found.push(...(await this.computedInstallRequires(tree, runtime, limits, hooks)));
    }
    return normalise(found);
  }

  /** A setup.py that computes its list is run, in the sandbox with no network, with setup() caught. */
  private async computedInstallRequires(tree: string, runtime: PythonRuntime, limits: Parameters<EnvironmentService['prepare']>[2], hooks: PrepareHooks): Promise<Requirement[]> {
    const scratch = join(this.o.root, `.setup-${randomBytes(6).toString('hex')}`);
    await mkdir(scratch, { recursive: true });
    try {
      await writeFile(join(scratch, 'setup.py'), readSmall(join(tree, 'setup.py')) ?? '');
      await writeFile(join(scratch, 'khd_setup_requires.py'), SETUP_CAPTURE);
      const out: string[] = [];
      const result = await this.runInSandbox(scratch, runtime, 'khd_setup_requires.py', [], [], false, limits, hooks, (lines) => out.push(...lines));
      const last = out.at(-1) ?? '';
      if (result.exitCode !== 0 || !last.startsWith('[')) {
        hooks.log([`khd: setup.py computes its install_requires, and running it failed: they are left out`]);
        return [];
      }
      return (JSON.parse(last) as string[]).map(parseRequirement).filter((r): r is Requirement => r !== null);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /** Builds a layer: a venv over the environment, the packages installed by pip, in the sandbox. */
  private async build(key: string, row: EnvironmentRow, runtime: PythonRuntime, missing: Requirement[], limits: Parameters<EnvironmentService['prepare']>[2], hooks: PrepareHooks): Promise<string> {
    const final = join(this.o.root, key);
    const staging = join(this.o.root, `.partial-${key}-${randomBytes(4).toString('hex')}`);
    const scratch = `${staging}.work`;
    hooks.log([`Installing ${missing.length} package${missing.length === 1 ? '' : 's'} for environment ${row.name}: ${missing.map((r) => r.text).join(', ')}`]);
    const started = this.o.now();
    await mkdir(staging, { recursive: true, mode: 0o755 });
    await mkdir(scratch, { recursive: true });
    try {
      const index = [
        ...(this.o.pipIndexUrl ? ['--index-url', this.o.pipIndexUrl] : ['--no-index']),
        ...(this.o.pipFindLinks ? ['--find-links', this.o.pipFindLinks] : []),
      ];
      await writeFile(join(scratch, 'khd_install.py'), INSTALLER);
      await writeFile(join(scratch, 'install.json'), JSON.stringify({ layer: staging, pip: index, requirements: missing.map((r) => r.text) }));
      const mounts: Mount[] = [{ host: staging, inside: staging, writable: true }];
      if (this.o.pipFindLinks) mounts.push({ host: this.o.pipFindLinks, inside: this.o.pipFindLinks, writable: false });
      const errors: string[] = [];
      const result = await this.runInSandbox(scratch, runtime, 'khd_install.py', [], mounts, Boolean(this.o.pipIndexUrl), limits, hooks, (lines) => {
        hooks.log(lines);
        errors.push(...lines.filter((l) => /^ERROR: /.test(l)));
      });
      if (hooks.stopped()) throw new InstallError('stopped while installing its requirements');
      if (result.exitCode !== 0) {
        const why = errors.at(-1)?.replace(/^ERROR: /, '') ?? `pip exited ${result.exitCode ?? result.signal}`;
        throw new InstallError(`could not install its requirements: ${why}`);
      }
      await writeFile(join(staging, LAYER_META), JSON.stringify({ environment: row.name, python: row.python, requirements: missing.map((r) => r.text) }));
      // The layer is the server's from now on: no session uid can change what others will mount.
      if (process.getuid?.() === 0) await ownAll(staging);
      await rename(staging, final);
      hooks.log([`khd: installed in ${((this.o.now() - started) / 1000).toFixed(1)} s`]);
      return final;
    } finally {
      await rm(staging, { recursive: true, force: true });
      await rm(scratch, { recursive: true, force: true });
    }
  }

  private async runInSandbox(
    workDir: string, python: PythonRuntime, entry: string, args: string[], mounts: Mount[], network: boolean,
    limits: Parameters<EnvironmentService['prepare']>[2], hooks: PrepareHooks, onLines: (lines: string[]) => void,
  ): Promise<ExecResult> {
    const execution = this.executor.start(
      { workDir, datasetName: null, datasetParts: [], mounts, env: { PIP_NO_CACHE_DIR: '1' }, sessionName: 'install', entry, args, gpuIds: [], python, network, limits },
      (_stream, lines) => onLines(lines),
    );
    hooks.running(() => execution.stop());
    return execution.result;
  }

  /** Names the system packages (nsml_package.txt) this server lacks; they cannot be installed per session. */
  private reportSystemPackages(tree: string, hooks: PrepareHooks): void {
    const text = readSmall(join(tree, SYSTEM_PACKAGES_FILE));
    if (text === null) return;
    const wanted = text.split(/\r?\n/).map((l) => l.replace(/#.*/, '').trim()).filter((l) => /^[a-z0-9][a-z0-9.+-]*$/.test(l));
    const has = this.o.hasSystemPackage ?? dpkgHas;
    const lacking = wanted.filter((p) => !has(p));
    if (lacking.length === 0) return;
    this.store.noteMissing(lacking);
    hooks.log([`khd: system packages from ${SYSTEM_PACKAGES_FILE} not on this server: ${lacking.join(', ')} (they cannot be installed per session; the organiser sees them in khd env ls --layers)`]);
  }

  private layerMeta(key: string): { environment: string; requirements: string[] } | null {
    if (key.startsWith('.')) return null;
    try {
      return JSON.parse(readFileSync(join(this.o.root, key, LAYER_META), 'utf8')) as { environment: string; requirements: string[] };
    } catch {
      return null;
    }
  }

  private async touch(key: string): Promise<void> {
    const now = new Date(this.o.now());
    await utimes(join(this.o.root, key, LAYER_META), now, now).catch(() => {});
  }

  /** Removes layers no session used for the TTL, and what a stop left half built. */
  async sweep(): Promise<number> {
    let removed = 0;
    const ttl = this.o.layerTtlMs ?? DEFAULT_LAYER_TTL_MS;
    for (const name of await readdir(this.o.root).catch(() => [] as string[])) {
      const path = join(this.o.root, name);
      if (name.startsWith('.')) {
        if (![...this.building.keys()].some((k) => name.includes(k))) await rm(path, { recursive: true, force: true });
        continue;
      }
      const used = (await stat(join(path, LAYER_META)).catch(() => undefined))?.mtimeMs ?? 0;
      if (this.o.now() - used > ttl && !this.building.has(name)) {
        await rm(path, { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }
}

const LAYER_META = 'khd-layer.json';

function readSmall(path: string): string | null {
  try {
    const st = lstatSync(path);
    if (!st.isFile() || st.size > MAX_REQUIREMENTS_BYTES) return null;
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function dpkgHas(name: string): boolean {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('install ok installed');
  } catch {
    return false;
  }
}

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

/** Runs a setup.py in the sandbox with setup() replaced, and prints what it would install. */
const SETUP_CAPTURE = String.raw`
import json, sys
captured = {}
def setup(**kwargs):
    captured.update(kwargs)
try:
    import setuptools
    setuptools.setup = setup
except ImportError:
    pass
try:
    import distutils.core
    distutils.core.setup = setup
except ImportError:
    pass
sys.argv = ['setup.py', '--version']
exec(compile(open('setup.py').read(), 'setup.py', 'exec'), {'__name__': '__main__', '__file__': 'setup.py'})
requires = captured.get('install_requires') or []
if isinstance(requires, str):
    requires = [requires]
print(json.dumps([str(r) for r in requires]))
`;
