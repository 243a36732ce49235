import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { EXIT } from '../../../protocol/errors.js';
import { enforcedLine } from '../../../protocol/format.js';
import { formatDuration, formatSize } from '../../../protocol/sizes.js';
import type { SessionInfo } from '../../../protocol/types.js';
import { collisionProblem, limitProblem } from '../../../pack/limits.js';
import { scanProject, type ScanResult } from '../../../pack/scan.js';
import type { Context } from '../../context.js';
import { CliError, SilentExit } from '../../errors.js';
import { createUploadProgress } from '../../render/upload-progress.js';
import { uploadTree } from '../../upload/upload-tree.js';
import { followLog } from '../logs/logs.js';
import type { ParsedRun } from './run-options.js';
import type { RunOptions } from './run.js';

/** Refuses what must not be sent: a home folder, no entry file, nothing at all, unreadable files. */
export function checkProject(scan: ScanResult, entry: string, home: string): void {
  if (resolve(scan.root) === resolve(home)) {
    throw new CliError(`refusing to upload your home folder (${scan.root}): cd into the project folder first`);
  }
  if (scan.unreadable.length > 0) {
    const list = scan.unreadable.slice(0, 10).join(', ');
    throw new CliError(`cannot read ${scan.unreadable.length} path(s) in the project: ${list}. Fix their permissions or add them to .nsmlignore`);
  }
  const collision = collisionProblem(scan.included);
  if (collision) throw new CliError(collision);
  if (scan.included.length === 0) {
    throw new CliError(`nothing to upload in ${scan.root}: the folder is empty or every file is ignored (see khd run --dry-run)`);
  }
  if (!scan.included.some((f) => f.path === entry)) {
    const left = scan.leftOut.find((l) => l.path === entry);
    throw new CliError(
      left
        ? `entry file ${entry} is left out (${left.reason}): change .nsmlignore or pass -e`
        : `entry file ${entry} not found in ${scan.root}: pass -e with the file to run`,
    );
  }
}

/**
 * Which environment the run would get, and what it would install: the `#nsml:` line and
 * requirements.txt read here, the choice made from the server's aliases when it can be asked.
 */
export async function printEnvironmentChoice(ctx: Context, scan: ScanResult, asked: string | undefined): Promise<void> {
  const { IMAGE_FILES, imageLine, parseRequirementsTxt } = await import('../../../protocol/requirements.js');
  const { readFile } = await import('node:fs/promises');
  const read = async (name: string) => (scan.included.some((f) => f.path === name) ? readFile(resolve(scan.root, name), 'utf8').catch(() => null) : null);
  let image: { file: string; name: string } | null = null;
  for (const file of IMAGE_FILES) {
    const name = imageLine((await read(file)) ?? '');
    if (name) {
      image = { file, name };
      break;
    }
  }
  let envs: { name: string; aliases: string[]; default: boolean }[] | undefined;
  try {
    envs = await (await ctx.api()).calls.environments();
  } catch {
    envs = undefined;
  }
  const { default: picomatch } = await import('picomatch');
  const def = envs?.find((e) => e.default)?.name ?? 'the default';
  let choice: string;
  if (asked) choice = `${asked} (--env)`;
  else if (!image) choice = `${def} (no #nsml: line)`;
  else if (!envs) choice = `decided by the server from #nsml: ${image.name} (${image.file}): log in to see it, or khd env ls`;
  else {
    const hit = envs.find((e) => e.aliases.some((a) => picomatch.isMatch(image!.name, a)));
    choice = hit ? `${hit.name} (#nsml: ${image.name} in ${image.file})` : `${def}: #nsml: ${image.name} (${image.file}) names no environment of the server`;
  }
  ctx.io.out(`Environment: ${choice}
`);
  const txt = await read('requirements.txt');
  const reqs = txt === null ? [] : parseRequirementsTxt(txt).requirements;
  const setup = scan.included.some((f) => f.path === 'setup.py');
  if (reqs.length > 0 || setup) {
    ctx.io.out(`Requirements: ${reqs.map((r) => r.text).join(', ') || 'none in requirements.txt'}${setup ? "; setup.py's install_requires, read by the server" : ''} (what the environment lacks is installed, once, and cached)
`);
  }
}

export function printDryRun(ctx: Context, scan: ScanResult): void {
  ctx.io.out(`Would send ${scan.included.length} file(s), ${formatSize(scan.totalBytes)}:\n`);
  for (const f of scan.included) ctx.io.out(`  ${f.path}  ${formatSize(f.size)}${f.readFrom ? `  (link to ${f.readFrom})` : ''}\n`);
  if (scan.leftOut.length > 0) {
    ctx.io.out(`Left out:\n`);
    for (const l of scan.leftOut) ctx.io.out(`  ${l.path}${l.directory ? '/' : ''}  (${l.reason})\n`);
  }
}

/** Needs no login: the limits are public, so a participant can check them before an account exists. */
export async function showLimits(ctx: Context): Promise<void> {
  const api = await ctx.anonymousApi(ctx.config.server());
  const { limits, sessionLimits: session, enforcement } = await api.calls.info();
  ctx.io.out(
    `files per upload   ${limits.maxFiles}\ntotal size         ${formatSize(limits.maxTotalBytes)}\n` +
      `one file           ${formatSize(limits.maxFileBytes)}\nfolder depth       ${limits.maxDepth}\n` +
      `path length        ${limits.maxPathLength}\n`,
  );
  ctx.io.out(
    `session memory     ${formatSize(session.maxMemoryBytes)}\nsession CPUs       ${session.maxCpus}\n` +
      `session time       ${formatDuration(session.maxWallMs)}\nsession log        ${formatSize(session.maxLogBytes)}\n` +
      `session disk       ${formatSize(session.maxDiskBytes)}\nsession files      ${session.maxFiles}\n` +
      `enforced           ${enforcedLine(enforcement)}\n`,
  );
}

/** What the server says before an upload: its limits and GPUs, and the datasets and environments when named. */
async function askServer(ctx: Context, opts: RunOptions) {
  const api = await ctx.api();
  const [info, datasets, envs] = await Promise.all([api.calls.info(), opts.dataset ? api.calls.datasets() : [], opts.env ? api.calls.environments() : []]);
  return { api, info, datasets, envs };
}

async function preflight(asked: Awaited<ReturnType<typeof askServer>>, opts: RunOptions, scan: ScanResult): Promise<void> {
  const { info, datasets, envs } = asked;
  if (opts.env && !envs.some((e) => e.name === opts.env)) {
    throw new CliError(`environment '${opts.env}' does not exist: khd env ls lists them`);
  }
  const problem = limitProblem(scan.included, info.limits);
  if (problem) throw new CliError(problem);
  if (opts.dataset && !datasets.some((d) => d.name === opts.dataset)) {
    const { didYouMean } = await import('../../../protocol/suggest.js');
    throw new CliError(`dataset '${opts.dataset}' does not exist${didYouMean(opts.dataset, datasets.map((d) => d.name)) || ': see khd dataset ls'}`);
  }
  if (opts.gpus !== undefined && opts.gpus > info.gpus) {
    throw new CliError(`-g ${opts.gpus}: the server has ${info.gpus} GPU(s); ask for ${info.gpus} or fewer`);
  }
}

export async function executeRun(opts: RunOptions, parsed: ParsedRun, ctx: Context): Promise<void> {
  // The server is asked while the project is scanned; what it answers is looked at after the
  // scan's own checks, so their refusals (and a missing login) come in the same order as before.
  const asking = opts.dryRun ? undefined : askServer(ctx, opts);
  asking?.catch(() => {});
  const scan = await scanProject(ctx.cwd, { useIgnoreRules: true });
  checkProject(scan, opts.entry, ctx.env.HOME || homedir());
  if (opts.dryRun) {
    printDryRun(ctx, scan);
    return printEnvironmentChoice(ctx, scan, opts.env);
  }

  const asked = await asking!;
  const { api } = asked;
  await preflight(asked, opts, scan);
  // NSML's line protocol where no terminal draws a bar (logs, CI), once the project passed its checks.
  if (!opts.json && !ctx.io.stderrIsTTY) ctx.io.err('.nsmlignore check - start\n.nsmlignore check - done\n');
  const progress = await createUploadProgress(ctx.io, { json: opts.json });
  const upload = await uploadTree(ctx, api, { root: scan.root, files: scan.included, purpose: 'session', progress }).finally(() =>
    progress.done(),
  );
  let session: SessionInfo;
  try {
    // A server that restarts between the upload and the start keeps the upload: the start waits for it.
    const { whileAway } = await import('../../api/failures.js');
    session = await whileAway(ctx, 'starting the session', () =>
      api.calls.run({
        upload: upload.id, dataset: opts.dataset ?? null, entry: opts.entry, args: parsed.args, gpus: opts.gpus,
        cpus: opts.cpus, memory: parsed.memory, shmSize: parsed.shmSize, memo: opts.memo ?? '', env: opts.env ?? null,
      }),
    );
  } finally {
    upload.release();
  }
  await announceSession(ctx, session, opts);
}

/**
 * `Session X is started` (or queued, and why), then with -i its log followed to the end and the
 * session's exit code as the command's: what `khd run` and `khd fork` say after starting one.
 */
export async function announceSession(ctx: Context, session: SessionInfo, opts: { json?: boolean; interactive?: boolean }, note = ''): Promise<void> {
  if (opts.json) ctx.io.out(`${JSON.stringify({ event: 'session', name: session.name, status: session.status })}\n`);
  else {
    ctx.io.out(
      session.status === 'Queued'
        ? `Session ${session.name} is queued${note}: ${session.queueReason ?? `waiting for ${session.gpus} free GPU(s)`}\n`
        : `Session ${session.name} is started${note}\n`,
    );
  }
  if (!opts.interactive) return;
  const end = await followLog(ctx, { user: session.user, dataset: session.dataset ?? 'None', number: session.number }, { follow: true, json: opts.json });
  if (!end) return;
  if (end.status !== 'Exited') ctx.io.err(`session ${session.name} ${end.status.toLowerCase()}${end.reason ? `: ${end.reason}` : ''}\n`);
  const code = end.exitCode ?? EXIT.failure;
  if (code !== 0) throw new SilentExit(code);
}
