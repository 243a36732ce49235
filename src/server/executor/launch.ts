import { existsSync } from 'node:fs';
import type { ExecLimits, ExecSpec, PythonRuntime } from './executor.js';
import { bubblewrapArgs, SANDBOX_DATA_ROOT, SANDBOX_RUNTIME_DIR, SANDBOX_WORK_DIR } from './sandbox.js';

export const DEFAULT_MAX_PROCESSES = 1024;
export const DEFAULT_TMP_BYTES = 1024 ** 3;

// util-linux, present on every Debian system (`Priority: required`).
const PRLIMIT = '/usr/bin/prlimit';
const TASKSET = '/usr/bin/taskset';
export const SETPRIV = '/usr/bin/setpriv';
/**
 * Puts the process into its cgroups before it runs anything else, then becomes the session's
 * launch: nothing it starts is ever outside the group. Its arguments are the `cgroup.procs`
 * files, `--`, and the command; none is ever read as shell code.
 */
const ENTER_CGROUP = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';
const NSENTER = '/usr/bin/nsenter';

/**
 * `argv` run inside a running session's sandbox (`khd exec`): its namespaces entered through its
 * init (`target`, bubblewrap's pid 1), its cgroup joined first, its limits, then its uid with no
 * groups and no new privileges; in its work folder. Nothing more than the session's code can do.
 */
export function enterCommand(target: number, argv: string[], settings: LaunchSettings, limits: ExecLimits, placement: { uid: number; cgroupProcs?: string[] }): string[] {
  const chain = [
    NSENTER, `--target=${target}`, '--mount', '--pid', '--net', '--ipc', '--uts', `--wdns=${SANDBOX_WORK_DIR}`, '--',
    ...launchChain(limits, settings, { uid: placement.uid }), ...argv,
  ];
  return placement.cgroupProcs ? ['/bin/sh', '-c', ENTER_CGROUP, 'khd-enter-cgroup', ...placement.cgroupProcs, '--', ...chain] : chain;
}

/** Whether the tools the launch chain needs are here: each missing one is named. */
export function missingLaunchTools(): string[] {
  return [PRLIMIT, TASKSET, SETPRIV, NSENTER].filter((t) => !existsSync(t));
}

/** What every launch of a server shares: the interpreter, the runtime, the sandbox's settings. */
export interface LaunchSettings {
  python: PythonRuntime;
  runtimeDir: string;
  /** Path of `bwrap`, or undefined for plain processes (`--no-sandbox`). */
  bubblewrap: string | undefined;
  maxProcesses?: number;
  tmpBytes?: number;
}

/** What this one run holds, decided by its runner: its uid, its cores, its cgroup. */
export interface LaunchPlacement {
  uid?: number;
  /** Cores to pin it to (where nothing else caps its CPUs). */
  cores?: number[];
  /** The cgroup.procs files it enters before anything runs. */
  cgroupProcs?: string[];
  /** Unsandboxed: the folder of links that is its DATASET_PATH. */
  datasetPath?: string;
}

export interface LaunchCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/**
 * A session's launch as a command line, environment and folder, with no side effect: what the
 * local executor spawns and what a Slurm job script runs on its node. The chain is bubblewrap
 * (the mounts, no network), prlimit (memory, processes, file size, no core files), taskset (the
 * cores, where pinned) and setpriv (the session's uid, no groups, no new privileges), each
 * exec'ing the next, then Python: one process in the end.
 */
export function launchCommand(spec: ExecSpec, settings: LaunchSettings, placement: LaunchPlacement): LaunchCommand {
  const sandboxed = settings.bubblewrap !== undefined;
  const datasetPath = spec.datasetName ? (sandboxed ? `${SANDBOX_DATA_ROOT}/${spec.datasetName}` : (placement.datasetPath ?? '')) : '';
  const mountEnv = Object.fromEntries(
    spec.mounts.filter((m) => m.env).map((m) => {
      const base = sandboxed ? m.inside : m.host;
      return [m.env, m.file ? `${base}/${m.file}` : base];
    }),
  );
  const env: NodeJS.ProcessEnv = {
    ...spec.env,
    ...mountEnv,
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: sandboxed ? '/tmp' : spec.workDir,
    LANG: 'C.UTF-8',
    PYTHONUNBUFFERED: '1',
    PYTHONPATH: sandboxed ? SANDBOX_RUNTIME_DIR : settings.runtimeDir,
    KHD_SESSION: '1',
    KHD_SESSION_NAME: spec.sessionName,
    KHD_DATASET_NAME: spec.datasetName ?? '',
    KHD_DATASET_PATH: datasetPath,
    KHD_GPU_NUM: String(spec.gpuIds.length),
    CUDA_VISIBLE_DEVICES: spec.gpuIds.join(','),
  };
  const runtime = spec.python ?? settings.python;
  const python = [...launchChain(spec.limits ?? {}, settings, placement), runtime.executable, '-u', spec.entry, ...spec.args];
  const launch = sandboxed
    ? [
        settings.bubblewrap!,
        ...bubblewrapArgs(spec, {
          pythonPrefixes: runtime.prefixes,
          runtimeDir: settings.runtimeDir,
          tmpBytes: settings.tmpBytes ?? DEFAULT_TMP_BYTES,
          keepSetuid: placement.uid !== undefined,
        }),
        '--',
        ...python,
      ]
    : python;
  const entered = placement.cgroupProcs ? ['/bin/sh', '-c', ENTER_CGROUP, 'khd-enter-cgroup', ...placement.cgroupProcs, '--', ...launch] : launch;
  return { command: entered[0]!, args: entered.slice(1), env, cwd: sandboxed ? '/' : spec.workDir };
}

/** prlimit, taskset and setpriv, each exec'ing the next. */
function launchChain(limits: ExecLimits, settings: LaunchSettings, placement: LaunchPlacement): string[] {
  const { uid, cores } = placement;
  const chain = [PRLIMIT, '--core=0'];
  if (limits.memoryBytes) chain.push(`--data=${limits.memoryBytes}`);
  if (limits.fileBytes) chain.push(`--fsize=${limits.fileBytes}`);
  // RLIMIT_NPROC counts the processes of a uid: only meaningful for a uid of the session's own.
  if (uid !== undefined) chain.push(`--nproc=${settings.maxProcesses ?? DEFAULT_MAX_PROCESSES}`);
  chain.push('--');
  if (cores) chain.push(TASKSET, '-c', cores.join(','));
  if (uid !== undefined) chain.push(SETPRIV, `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--no-new-privs', '--');
  return chain;
}
