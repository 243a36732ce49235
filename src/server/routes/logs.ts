import type { FastifyPluginAsync } from 'fastify';
import type { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { KhdError } from '../../protocol/errors.js';
import { isFinished, LOG_EVENT_END, type LogEnd } from '../../protocol/types.js';
import { requireUser } from '../app.js';
import type { LogCursor } from '../logs/log-store.js';
import type { Services } from '../services.js';
import { findSession, type SessionParams } from './sessions.js';

type LogsRequest = SessionParams & { Querystring: { follow?: string; tail?: number } };

const LOGS_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: { follow: { enum: ['0', '1'] }, tail: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
};

function parseCount(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text)) throw new KhdError('KHD_BAD_REQUEST', `${what} must be a whole number, not '${text.slice(0, 40)}'`);
  return Number(text);
}

/**
 * A session's log as Server-Sent Events: one event per record (`id` = its position), resumable
 * with `Last-Event-ID`, closed by an `end` event once the session has ended and every record
 * was sent. Without `follow=1` the stream stops at what is on disk now.
 */
export function logRoutes(services: Services): FastifyPluginAsync {
  return async (api) => {
    api.addHook('preHandler', requireUser(services));
    api.get<LogsRequest>('/sessions/:user/:dataset/:number/logs', { schema: { querystring: LOGS_QUERY } }, async (request, reply) => {
      const session = findSession(services, request);
      if (session.type === 'submit' && !request.user.admin) {
        throw new KhdError('KHD_FORBIDDEN', `the output of a real submit is not shown (it runs on the hidden test set): khd submit -t shows your code's output on the public sample`);
      }
      const follow = request.query.follow === '1';
      const lastId = parseCount(request.headers['last-event-id'] as string | undefined, 'Last-Event-ID');
      const tail = request.query.tail;
      // Counting reads a finished log once more: only a resume or a tail needs it.
      const count = lastId !== undefined || tail !== undefined ? await services.logs.count(session.id) : 0;
      if (lastId !== undefined && lastId > count) {
        throw new KhdError('KHD_BAD_REQUEST', `Last-Event-ID ${lastId} is past the end of the log (${count} lines)`);
      }
      // Found through the log's index: a tail or a resume does not read the log from its start.
      const cursor: LogCursor = services.logs.cursorAfter(session.id, lastId ?? (tail !== undefined ? Math.max(0, count - tail) : 0));
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      await streamLog(services, session.id, cursor, follow, res);
    });
  };
}

async function streamLog(services: Services, sessionId: number, cursor: LogCursor, follow: boolean, res: ServerResponse) {
  let wake: (() => void) | undefined;
  let closed = false;
  // Set by every append; checked before sleeping so a wake-up during a read is never lost.
  let pending = false;
  const unwatch = services.logs.watch(sessionId, () => {
    pending = true;
    wake?.();
  });
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), services.heartbeatMs);
  res.on('close', () => {
    closed = true;
    wake?.();
  });
  try {
    for (;;) {
      pending = false;
      // Read the status before the records: once it says ended, every record is already on disk.
      const session = services.sessionStore.byId(sessionId);
      for await (const record of services.logs.read(sessionId, cursor)) {
        if (closed) return;
        if (!res.write(`id: ${record.id}\ndata: ${JSON.stringify(record)}\n\n`)) await drained(res);
      }
      if (closed) return;
      if (!session || isFinished(session.status)) {
        const end: LogEnd = session
          ? { status: session.status, exitCode: session.exitCode, reason: session.reason }
          : { status: 'Stopped', exitCode: null, reason: 'the session was removed' };
        res.write(`event: ${LOG_EVENT_END}\ndata: ${JSON.stringify(end)}\n\n`);
        return;
      }
      if (!follow) return;
      if (!pending) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    clearInterval(heartbeat);
    unwatch();
    res.end();
  }
}

/** Until the response can take more, or is closed; neither listener outlives the wait. */
export function drained(res: EventEmitter): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
