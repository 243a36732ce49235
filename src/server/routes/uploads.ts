import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { FastifyPluginAsync } from 'fastify';
import { KhdError } from '../../protocol/errors.js';
import type { CreateUploadRequest } from '../../protocol/types.js';
import { requireUser } from '../app.js';
import { UPLOAD_LIMITS } from '../config.js';
import type { Services } from '../services.js';

const createSchema = {
  body: {
    type: 'object',
    required: ['purpose', 'files'],
    additionalProperties: false,
    properties: {
      purpose: { enum: ['session', 'dataset'] },
      files: {
        type: 'array',
        items: {
          type: 'object',
          // sha256 may be left out (a cold hash cache): the server hashes that content as it arrives.
          required: ['path', 'size', 'mode'],
          additionalProperties: false,
          properties: {
            path: { type: 'string', minLength: 1, maxLength: 4096 },
            size: { type: 'integer', minimum: 0 },
            mode: { type: 'integer', minimum: 0, maximum: 0o7777 },
            sha256: { type: 'string', minLength: 64, maxLength: 64 },
          },
        },
      },
    },
  },
};

type IdParams = { Params: { id: string } };

const MANIFEST_BODY_LIMIT = 512 * 1024 * 1024;
/** A manifest entry's JSON beyond its path: size, mode, sha256, quotes and keys. */
const ENTRY_OVERHEAD = 200;
/**
 * The most a manifest may inflate to: what the largest allowed session upload takes (20,000
 * paths of at most 1,024 characters, about 24 MB); an admin's dataset manifest may be larger.
 */
const SESSION_MANIFEST_LIMIT = UPLOAD_LIMITS.session.maxFiles * (UPLOAD_LIMITS.session.maxPathLength + ENTRY_OVERHEAD);
/** Manifests parsed at once, server-wide (each is held whole while JSON.parse reads it), and how many may wait. */
export const MANIFESTS_AT_ONCE = 2;
const MANIFESTS_WAITING = 32;

let parsing = 0;
const waiting: (() => void)[] = [];

/** A slot to parse one manifest in; the release is idempotent. */
async function manifestSlot(): Promise<() => void> {
  if (parsing >= MANIFESTS_AT_ONCE) {
    if (waiting.length >= MANIFESTS_WAITING) throw new KhdError('KHD_TOO_MANY_REQUESTS', 'the server is reading too many manifests at once: try again in a moment', 1);
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
  parsing++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    parsing--;
    waiting.shift()?.();
  };
}

/** Counts what the body inflates to as it inflates, and stops it past `limit`. */
class InflatedCap extends Transform {
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      const err = Object.assign(new Error(`the manifest inflates to more than ${this.limit} bytes, more than ${UPLOAD_LIMITS.session.maxFiles} files could need`), { statusCode: 413 });
      return done(err);
    }
    done(null, chunk);
  }
}

export function uploadRoutes(services: Services): FastifyPluginAsync {
  return async (api) => {
    api.addHook('preHandler', requireUser(services));
    // A manifest of a large dataset can be big; everything else stays under the default limit.
    // The CLI sends it gzipped; the limit applies to what it inflates to.
    api.post<{ Body: CreateUploadRequest }>(
      '/uploads',
      {
        schema: createSchema,
        bodyLimit: MANIFEST_BODY_LIMIT,
        // Who sends it is known before a byte is read: a participant's manifest has a participant's limit.
        onRequest: requireUser(services),
        preParsing: async (request, reply, payload) => {
          const release = await manifestSlot();
          reply.raw.once('close', release);
          const limit = request.user.admin ? MANIFEST_BODY_LIMIT : SESSION_MANIFEST_LIMIT;
          const declared = Number(request.headers['content-length'] ?? 0);
          if (request.headers['content-encoding'] !== 'gzip') {
            if (declared > limit) throw Object.assign(new Error(`the manifest is ${declared} bytes, more than ${limit}`), { statusCode: 413 });
            return payload.pipe(new InflatedCap(limit));
          }
          delete request.headers['content-length'];
          const gunzip = createGunzip();
          const cap = new InflatedCap(limit);
          gunzip.on('error', (err: Error & { statusCode?: number }) => {
            err.statusCode = 400;
            err.message = `the manifest is not valid gzip (${err.message})`;
            cap.destroy(err);
          });
          return payload.pipe(gunzip).pipe(cap);
        },
      },
      async (request, reply) => {
        const answer = await services.uploads.create(request.user, request.body);
        // 200 without an upload: hash the entries named first (UploadService.create).
        return reply.status('hashFirst' in answer ? 200 : 201).send(answer);
      },
    );
    // The re-run fast path (UploadService.reuse): a tree's key instead of its manifest.
    api.post<{ Body: { purpose: 'session'; tree: string } }>(
      '/uploads/reuse',
      {
        schema: {
          body: {
            type: 'object',
            required: ['purpose', 'tree'],
            additionalProperties: false,
            properties: { purpose: { const: 'session' }, tree: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
          },
        },
      },
      async (request, reply) => reply.status(201).send(services.uploads.reuse(request.user, request.body.tree)),
    );
    api.put<IdParams>('/uploads/:id', async (request, reply) => {
      try {
        const upload = services.uploads.get(request.user, request.params.id);
        const type = request.headers['content-type'];
        if (type !== 'application/gzip' && type !== 'application/x-tar') {
          throw new KhdError('KHD_BAD_REQUEST', 'upload bodies must be a tar, application/x-tar or gzipped as application/gzip');
        }
        const gzip = type === 'application/gzip';
        // Refused before a byte is read; a body without a length is counted as it streams.
        const declared = Number(request.headers['content-length'] ?? 0);
        const max = services.uploads.maxBodyBytes(upload, gzip);
        if (declared > max) {
          throw new KhdError('KHD_PAYLOAD_TOO_LARGE', `the upload body declares ${declared} bytes, more than its files could take (${max})`);
        }
        return await services.uploads.receive(request.user, upload, request.raw, gzip);
      } catch (err) {
        // A refused body is not read to its end to keep the connection: it is closed after the answer.
        if (!request.raw.readableEnded) void reply.header('connection', 'close');
        throw err;
      }
    });
    api.delete<IdParams>('/uploads/:id', async (request, reply) => {
      await services.uploads.cancel(request.user, request.params.id);
      return reply.status(204).send();
    });
  };
}
