import { createHash } from 'node:crypto';
import { join } from 'node:path';
import picomatch from 'picomatch';
import { KhdError } from '../../protocol/errors.js';
import type { Requirement } from '../../protocol/requirements.js';
import { checkName } from '../../protocol/session-name.js';
import type { AddEnvironmentRequest, EnvironmentDetails, EnvironmentInfo } from '../../protocol/types.js';
import type { Executor, PythonRuntime } from '../executor/executor.js';
import { resolvePython, type PythonInfo } from '../executor/python.js';
import type { UserRow } from '../store/accounts.js';
import { toInfo, type EnvironmentRow, type EnvironmentStore, type ProbedInfo } from '../store/environments.js';
import { InstallError, Layers, type InstallLimits, type PrepareHooks } from './layers.js';
import { probe } from './probe.js';
import { imageOf, lackingSystemPackages, requirementsOf } from './project-requirements.js';

/** The built-in environment: the server's own `--python`. */
export const DEFAULT_ENVIRONMENT = 'default';
/** Layers no session used for this long are removed by the sweep. */
export const DEFAULT_LAYER_TTL_MS = 14 * 24 * 3600 * 1000;

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

export { InstallError, type PrepareHooks };

/**
 * Environments: the Python stacks sessions run on, registered by the organiser; the `#nsml:`
 * line of a project chooses one by alias. A project's own requirements are installed into a
 * layer on top of its environment (a venv that sees the environment's packages), cached by
 * (environment, requirements), built in the sandbox, and mounted read-only into sessions.
 */
export class EnvironmentService {
  private defaultInfo: ProbedInfo = { version: null, installed: {}, gpus: false };
  private readonly layers: Layers;
  /** Registered interpreters, resolved once (where they live, their prefixes). */
  private readonly runtimes = new Map<string, PythonRuntime>();

  constructor(
    private readonly store: EnvironmentStore,
    executor: Executor,
    private readonly o: EnvironmentOptions,
  ) {
    this.layers = new Layers({ root: o.root, executor, pipIndexUrl: o.pipIndexUrl, pipFindLinks: o.pipFindLinks, now: o.now });
  }

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
    return { layers: await this.layers.list(), missingSystemPackages: this.store.missing() };
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
    const image = imageOf(tree);
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
  async prepare(tree: string, asked: string | null, limits: InstallLimits, hooks: PrepareHooks): Promise<Prepared> {
    const { row, note } = this.choose(tree, asked);
    if (note) hooks.log([note]);
    const lacking = lackingSystemPackages(tree, this.o.hasSystemPackage);
    if (lacking.length > 0) {
      this.store.noteMissing(lacking);
      hooks.log([`khd: system packages from nsml_package.txt not on this server: ${lacking.join(', ')} (they cannot be installed per session; the organiser sees them in khd env ls --layers)`]);
    }
    const runtime = this.runtimeOf(row);
    const missing: Requirement[] = [];
    for (const r of await requirementsOf(tree, runtime, this.layers, limits, hooks)) {
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
    const layer = await this.layers.ensure(key, row, runtime, missing, limits, hooks);
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

  /** Removes layers no session used for the TTL, and what a stop left half built. */
  sweep(): Promise<number> {
    return this.layers.sweep(this.o.layerTtlMs ?? DEFAULT_LAYER_TTL_MS);
  }
}
