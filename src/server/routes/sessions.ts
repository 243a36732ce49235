import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { KhdError } from '../../protocol/errors.js';
import { didYouMean } from '../../protocol/suggest.js';
import { NO_DATASET, parseSessionName } from '../../protocol/session-name.js';
import type { ForkRequest, RunRequest } from '../../protocol/types.js';
import { requireUser } from '../app.js';
import { removeCheckpoint } from '../sessions/checkpoints.js';
import type { SessionRow } from '../store/sessions.js';
import type { Services } from '../services.js';

export type SessionParams = { Params: { user: string; dataset: string; number: string } };

const runSchema = {
  body: {
    type: 'object',
    required: ['upload', 'dataset', 'entry', 'args', 'cpus', 'memory', 'shmSize', 'memo'],
    additionalProperties: false,
    properties: {
      upload: { type: 'string', maxLength: 64 },
      dataset: { type: ['string', 'null'], maxLength: 64 },
      entry: { type: 'string', minLength: 1, maxLength: 1024 },
      args: { type: 'array', maxItems: 1024, items: { type: 'string', maxLength: 8192 } },
      gpus: { type: 'integer', minimum: 0, maximum: 64 },
      cpus: { type: 'integer', minimum: 1, maximum: 1024 },
      memory: { type: 'integer', minimum: 1 },
      shmSize: { type: 'integer', minimum: 0 },
      memo: { type: 'string', maxLength: 4096 },
      env: { type: ['string', 'null'], maxLength: 64 },
    },
  },
};

const forkSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    properties: {
      checkpoint: { type: ['string', 'null'], minLength: 1, maxLength: 255 },
      args: { type: ['array', 'null'], maxItems: 1024, items: { type: 'string', maxLength: 8192 } },
      gpus: { type: 'integer', minimum: 0, maximum: 64 },
      cpus: { type: 'integer', minimum: 1, maximum: 1024 },
      memory: { type: 'integer', minimum: 1 },
      memo: { type: 'string', maxLength: 4096 },
    },
  },
};

/** Query strings, each parameter in range: out of range is a 400 naming it, never a 500. */
const flag = { enum: ['0', '1'] };
const LIST_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    all: flag, everyone: flag, mine: flag, limit: { type: 'integer', minimum: 1, maximum: 100_000 }, dataset: { type: 'string', maxLength: 64 },
    search: { type: 'string', minLength: 1, maxLength: 256 },
  },
};
const OFFSET_QUERY = { type: 'object', additionalProperties: false, properties: { offset: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } } };
const FORCE_QUERY = { type: 'object', additionalProperties: false, properties: { force: flag } };

/**
 * The session named in the URL, if the caller may see it: a session of their team (NSML gave
 * each team one account) to read, their own to change (stop, remove, memo, a checkpoint's
 * removal); admins, any. Another team's session gets exactly the answer a missing one gets, so
 * names cannot be probed.
 */
export function findSession(services: Services, request: FastifyRequest<SessionParams>, access: 'read' | 'own' = 'read'): SessionRow {
  const { user, dataset, number } = request.params;
  const name = `${user}/${dataset}/${number}`;
  let session: SessionRow | undefined;
  try {
    const parsed = parseSessionName(name);
    session = services.sessionStore.byName(parsed.user, parsed.dataset, parsed.number);
  } catch {
    // A malformed name is answered like a missing session.
  }
  const me = request.user;
  if (!session || (session.teamId !== me.teamId && !me.admin)) {
    throw new KhdError('KHD_SESSION_NOT_FOUND', `session ${name} does not exist${sessionHint(services, me, name) || ': see khd ps -a'}`);
  }
  if (access === 'own' && session.userId !== me.id && !me.admin) {
    throw new KhdError('KHD_FORBIDDEN', `session ${name} is ${session.user}'s: only its owner (or an admin) can change it; teammates can read it and submit it`);
  }
  return session;
}

/**
 * `: did you mean kim/mnist/3?`: among the sessions the caller may see (its team's; an admin's,
 * all), never another team's; one character off at most (kim/mnist/33 for kim/mnist/3, not 99 for 2).
 */
export function sessionHint(services: Services, me: { teamId: number; admin: boolean }, typed: string): string {
  const names = services.sessionStore.list({ teamId: me.admin ? undefined : me.teamId, limit: 5000 }).map((s) => s.name);
  return didYouMean(typed, names, SESSION_EDITS);
}

/** How far a mistyped session name may be from the one suggested. */
export const SESSION_EDITS = 1;

/** `khd exec`: how long a command may run (default and most), and how many lines of it come back. */
const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
const MAX_EXEC_TIMEOUT_MS = 600_000;
const MAX_EXEC_LINES = 100_000;

const execSchema = {
  body: {
    type: 'object',
    required: ['command'],
    additionalProperties: false,
    properties: {
      command: { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', minLength: 1, maxLength: 8192 } },
      timeoutMs: { type: 'integer', minimum: 1000, maximum: MAX_EXEC_TIMEOUT_MS },
    },
  },
};

/** How long nvidia-smi may take before gpustat gives up on it. */
const NVIDIA_SMI_TIMEOUT_MS = 10_000;

/**
 * `nvidia-smi` limited to the session's GPUs, as text; or why there is nothing to show: a session
 * without GPUs, one not running, GPUs on a Slurm node (nvidia-smi runs where the job runs), or a
 * machine without the NVIDIA driver.
 */
async function gpuStatus(s: SessionRow, scheduled: boolean): Promise<string> {
  if (s.gpus === 0) throw new KhdError('KHD_BAD_REQUEST', `session ${s.name} has no GPUs (it was started with -g 0)`);
  if (s.status !== 'Running') throw new KhdError('KHD_BAD_REQUEST', `session ${s.name} is ${s.status}: its GPUs are shown while it runs`);
  if (scheduled) throw new KhdError('KHD_BAD_REQUEST', `session ${s.name} runs on a Slurm node: its GPUs are on that node, where nvidia-smi shows them`);
  const query = ['--id', s.gpuIds.join(','), '--query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu', '--format=csv'];
  try {
    return (await promisify(execFile)('nvidia-smi', query, { timeout: NVIDIA_SMI_TIMEOUT_MS })).stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new KhdError('KHD_BAD_REQUEST', 'this server has no NVIDIA driver (nvidia-smi is not installed): its GPUs cannot be shown');
    throw new KhdError('KHD_INTERNAL', `nvidia-smi failed: ${(e.stderr ?? e.message).trim().split('\n')[0]}`);
  }
}

export function sessionRoutes(services: Services): FastifyPluginAsync {
  const publicView = (s: SessionRow) => services.sessions.describe(s);
  return async (api) => {
    api.addHook('preHandler', requireUser(services));
    const path = '/sessions/:user/:dataset/:number';

    api.post<{ Body: RunRequest }>('/sessions', { schema: runSchema }, async (request, reply) => {
      const session = await services.sessions.create(request.user, request.body);
      return reply.status(201).send(await publicView(session));
    });

    api.get<{ Querystring: { all?: string; limit?: number; dataset?: string; everyone?: string; mine?: string; search?: string } }>('/sessions', { schema: { querystring: LIST_QUERY } }, async (request) => {
      const { all, limit: n, dataset, everyone, mine, search } = request.query;
      if (everyone === '1' && !request.user.admin) throw new KhdError('KHD_FORBIDDEN', "only an admin can list everyone's sessions");
      const rows = services.sessionStore.list({
        teamId: everyone === '1' ? undefined : request.user.teamId,
        userId: mine === '1' ? request.user.id : undefined,
        dataset: dataset === undefined ? undefined : dataset || NO_DATASET,
        activeOnly: all !== '1',
        search,
        limit: n,
      });
      return Promise.all(rows.map(publicView));
    });

    api.get<SessionParams>(path, async (request) => publicView(findSession(services, request)));

    api.post<SessionParams & { Body: ForkRequest }>(`${path}/fork`, { schema: forkSchema }, async (request, reply) => {
      const session = await services.sessions.fork(request.user, findSession(services, request), request.body);
      reply.code(201);
      return publicView(session);
    });

    // khd exec: a command inside the running sandbox, its output as JSON lines, then how it ended.
    api.post<SessionParams & { Body: { command: string[]; timeoutMs?: number } }>(`${path}/exec`, { schema: execSchema }, async (request, reply) => {
      const session = findSession(services, request, 'own');
      const res = reply.raw;
      const write = (value: object) => res.write(`${JSON.stringify(value)}\n`);
      let lines = 0;
      const execution = services.sessions.exec(session, request.body.command, (stream, batch) => {
        // What a command can print is capped, like a session's log.
        for (const line of batch) if (++lines <= MAX_EXEC_LINES) write({ stream, line });
      }, request.body.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS);
      reply.hijack();
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      res.on('close', () => execution.stop());
      const result = await execution.result;
      write({ exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut, cut: lines > MAX_EXEC_LINES });
      res.end();
    });

    // khd gpustat: nvidia-smi's view of the GPUs the session holds, on this machine.
    api.get<SessionParams>(`${path}/gpustat`, async (request) => ({ text: await gpuStatus(findSession(services, request), services.executor.queues) }));

    api.post<SessionParams>(`${path}/stop`, async (request) =>
      publicView(services.sessions.stop(findSession(services, request, 'own'))),
    );

    api.patch<SessionParams & { Body: { memo: string } }>(
      path,
      { schema: { body: { type: 'object', required: ['memo'], additionalProperties: false, properties: { memo: { type: 'string', maxLength: 4096 } } } } },
      async (request) => {
        const session = findSession(services, request, 'own');
        services.sessionStore.setMemo(session.id, request.body.memo);
        return publicView(services.sessionStore.byId(session.id)!);
      },
    );

    // What nsml.report recorded, from a byte offset of the events file: the dashboard's plots.
    api.get<SessionParams & { Querystring: { offset?: number } }>(`${path}/metrics`, { schema: { querystring: OFFSET_QUERY } }, async (request) => {
      const session = findSession(services, request);
      const offset = request.query.offset ?? 0;
      // A real submit runs on the hidden test set: what it reports is not shown, like its log.
      if (session.type === 'submit' && !request.user.admin) return { offset, points: [], more: false };
      return services.events.reports(services.dataDir.events(session.id), offset);
    });

    api.get<SessionParams>(`${path}/models`, async (request) => services.sessions.checkpoints(findSession(services, request)));

    api.delete<SessionParams & { Params: { checkpoint: string } }>(`${path}/models/:checkpoint`, async (request, reply) => {
      const session = findSession(services, request, 'own');
      const { checkpoint } = request.params;
      if (!(await services.sessions.checkpoints(session)).some((c) => c.checkpoint === checkpoint)) {
        const hint = didYouMean(checkpoint, (await services.sessions.checkpoints(session)).map((c) => c.checkpoint));
        throw new KhdError('KHD_CHECKPOINT_NOT_FOUND', `session ${session.name} has no checkpoint '${checkpoint}'${hint || `: see khd model ls ${session.name}`}`);
      }
      await removeCheckpoint(services.sessions.checkpointDir(session), checkpoint);
      return reply.status(204).send();
    });

    api.delete<SessionParams & { Querystring: { force?: string } }>(path, { schema: { querystring: FORCE_QUERY } }, async (request, reply) => {
      await services.sessions.remove(findSession(services, request, 'own'), request.query.force === '1');
      return reply.status(204).send();
    });
  };
}
