import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { KhdError } from '../../protocol/errors.js';
import { requireUser } from '../app.js';
import { pathProblem } from '../../protocol/paths.js';
import { didYouMean } from '../../protocol/suggest.js';
import type { Services } from '../services.js';
import type { SessionRow } from '../store/sessions.js';
import { planTar, tarOf, type TarLimits } from '../untrusted/session-tar.js';
import { UntrustedFileError } from '../untrusted/session-files.js';
import { findSession, type SessionParams } from './sessions.js';

/** Headers that say what a download holds, found before it is sent (the client's progress). */
export const DOWNLOAD_FILES_HEADER = 'x-khd-files';
export const DOWNLOAD_BYTES_HEADER = 'x-khd-bytes';
export const DOWNLOAD_LEFT_OUT_HEADER = 'x-khd-left-out';

const PATH_QUERY = { type: 'object', additionalProperties: false, properties: { path: { type: 'string', maxLength: 4096 } } };

/**
 * What participants take out of the platform, each as a tar: a session's uploaded code (`khd
 * pull`), what it wrote in its folder (`khd download`), a checkpoint (`khd model pull`). Only
 * a training session of the caller's team, and for files and checkpoints only where the dataset
 * allows it (`--no-model-pull`). A submit session ran on the hidden test set: nothing of it goes
 * out. Everything a session wrote is read through the untrusted reader (no link followed, regular
 * files only, within the session's disk limit).
 */
export function downloadRoutes(services: Services): FastifyPluginAsync {
  const path = '/sessions/:user/:dataset/:number';
  const limits = (what: string): TarLimits => ({
    maxEntries: services.info.sessionLimits.maxFiles,
    maxBytes: services.info.sessionLimits.maxDiskBytes,
    what,
  });

  const trainingOnly = (s: SessionRow, what: string) => {
    if (s.type !== 'normal') {
      throw new KhdError('KHD_FORBIDDEN', `session ${s.name} is a ${s.type} session, run on the hidden test set: its ${what} cannot be taken out; use its training session`);
    }
  };
  const pullAllowed = (s: SessionRow, what: string) => {
    const dataset = s.datasetId === null ? undefined : services.datasetStore.byId(s.datasetId);
    if (dataset && !dataset.modelPull) {
      throw new KhdError('KHD_FORBIDDEN', `dataset ${dataset.name} keeps checkpoints and sessions' files on the server: its ${what} cannot be downloaded in this competition`);
    }
  };

  /** Plans `rel` of `root` (refusing what is missing or over the limits), then sends it as a tar. */
  const send = async (reply: FastifyReply, root: string, rel: string, what: string) => {
    let plan;
    try {
      plan = await planTar(root, rel, limits(what));
    } catch (err) {
      if (!(err instanceof UntrustedFileError)) throw err;
      if (err.why === 'missing') throw new KhdError('KHD_NOT_FOUND', `${what} has no '${rel}'`);
      if (err.why === 'too-large' || err.why === 'too-many-files') throw new KhdError('KHD_PAYLOAD_TOO_LARGE', `${err.message}: download a part of it`);
      throw new KhdError('KHD_FORBIDDEN', `${what}: ${err.message}`);
    }
    reply.header('content-type', 'application/x-tar');
    reply.header(DOWNLOAD_FILES_HEADER, String(plan.files));
    reply.header(DOWNLOAD_BYTES_HEADER, String(plan.bytes));
    if (plan.leftOut.length > 0) reply.header(DOWNLOAD_LEFT_OUT_HEADER, encodeURIComponent(plan.leftOut.slice(0, 20).join('\n')));
    return reply.send(tarOf(root, rel, limits(what)));
  };

  return async (api) => {
    api.addHook('preHandler', requireUser(services));

    // khd pull: the code as it was uploaded (the server's tree; the session never wrote in it).
    api.get<SessionParams>(`${path}/code`, async (request, reply) => {
      const session = findSession(services, request);
      trainingOnly(session, 'code');
      const upload = services.uploadStore.get(session.uploadId);
      if (!upload?.tree) throw new KhdError('KHD_NOT_FOUND', `session ${session.name}'s code is no longer on the server`);
      return send(reply, services.dataDir.tree(upload.tree), '', `session ${session.name}'s code`);
    });

    // khd download: what the session has in its folder, or one file or folder of it.
    api.get<SessionParams & { Querystring: { path?: string } }>(`${path}/files`, { schema: { querystring: PATH_QUERY } }, async (request, reply) => {
      const session = findSession(services, request);
      trainingOnly(session, 'files');
      pullAllowed(session, 'files');
      const rel = (request.query.path ?? '').replace(/\/+$/, '');
      const problem = rel ? pathProblem(rel, 64, 4096) : undefined;
      if (problem) throw new KhdError('KHD_BAD_REQUEST', `'${rel}': ${problem}: give a path inside the session's folder`);
      return send(reply, services.dataDir.work(session.id), rel, `session ${session.name}'s folder`);
    });

    // khd model pull: one checkpoint.
    api.get<SessionParams & { Params: { checkpoint: string } }>(`${path}/models/:checkpoint/files`, async (request, reply) => {
      const session = findSession(services, request);
      trainingOnly(session, 'checkpoints');
      pullAllowed(session, 'checkpoints');
      const { checkpoint } = request.params;
      const saved = (await services.sessions.checkpoints(session)).map((c) => c.checkpoint);
      if (!saved.includes(checkpoint)) {
        const hint = didYouMean(checkpoint, saved);
        throw new KhdError('KHD_CHECKPOINT_NOT_FOUND', `session ${session.name} has no checkpoint '${checkpoint}'${hint || `: see khd model ls ${session.name}`}`);
      }
      return send(reply, services.sessions.checkpointDir(session), checkpoint, `checkpoint ${checkpoint} of ${session.name}`);
    });
  };
}
