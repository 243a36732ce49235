import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions as NodeRequestOptions } from 'node:http';
import { Readable } from 'node:stream';
import { isErrorCode, type ErrorBody, type ErrorCode } from '../../protocol/errors.js';
import { API_PREFIX } from '../../protocol/types.js';
import { VERSION } from '../../protocol/version.js';

export const REQUEST_TIMEOUT_MS = 30_000;

/** A non-2xx answer from the server, with the catalogue code and the server's sentence. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status: number,
    /** The server's Retry-After, in milliseconds. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The server could not be reached at all; says which URL was tried. */
export class ConnectionError extends Error {
  constructor(
    readonly server: string,
    readonly reason: string,
  ) {
    super(`cannot reach the khd server at ${server} (${reason}): is it running? Check --server or KHD_SERVER`);
    this.name = 'ConnectionError';
  }
}

export interface RequestOptions {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Under the API prefix, e.g. `/sessions`. */
  url: string;
  /** The query; undefined values are left out. */
  params?: Record<string, string | number | undefined>;
  /** A Buffer or a stream is sent as it is; anything else as JSON. */
  data?: unknown;
  headers?: Record<string, string>;
  /** Milliseconds until the whole answer is in (for a stream: its headers); 0 for none. */
  timeout?: number;
  signal?: AbortSignal;
}

/** A streamed answer: its status was 200, its body is still to be read. */
export interface StreamResponse {
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

export interface ApiClient {
  server: string;
  /** The answer's JSON (undefined when it has no body); a non-2xx answer throws ApiError. */
  request<T>(options: RequestOptions): Promise<T>;
  /** The answer as a stream; a non-200 answer is read and thrown as ApiError. */
  stream(options: RequestOptions): Promise<StreamResponse>;
}

/**
 * Every request the CLI makes goes through here, on Node's own `http`: axios cost 115–136 ms
 * of every command's start-up (its CommonJS files, and `fetch`'s undici, which its adapters
 * touch), more than the rest of a `khd ps` (docs/performance.md). One keep-alive connection
 * serves a command's requests in turn; an idle one does not hold the process open. Redirects
 * are not followed (they would resend the token to wherever they point). The token never
 * appears in an error.
 */
export function createApiClient(server: string, token: string | undefined): ApiClient {
  const base = new URL(`${server}${API_PREFIX}`);
  const headers: Record<string, string> = { 'User-Agent': `khd/${VERSION}`, Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  const send = async (options: RequestOptions, streamed: boolean): Promise<IncomingMessage> => {
    const url = new URL(base.pathname + options.url, base);
    for (const [key, value] of Object.entries(options.params ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    const requestFn = url.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
    const { body, bodyHeaders } = encode(options.data);
    const timeout = options.timeout ?? REQUEST_TIMEOUT_MS;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const init: NodeRequestOptions = { method: options.method, headers: { ...headers, ...bodyHeaders, ...options.headers }, signal: options.signal };
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      /** The socket's failures are the server being unreachable; the body's own (a file that changed) pass as they are. */
      const fail = (err: Error, socket = true) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        if (options.signal?.aborted) reject(aborted());
        else if (socket && !(err instanceof ConnectionError)) reject(new ConnectionError(server, (err as NodeJS.ErrnoException).code ?? err.message));
        else reject(err);
      };
      const req: ClientRequest = requestFn(url, init, (res) => {
        if (streamed) {
          clearTimeout(timer);
          settled = true;
          return resolve(res);
        }
        res.on('error', (err) => fail(err));
        res.on('end', () => {
          clearTimeout(timer);
          settled = true;
        });
        resolve(res);
      });
      req.on('error', (err) => fail(err));
      if (timeout > 0) {
        timer = setTimeout(() => {
          const err = new ConnectionError(server, 'timed out');
          fail(err);
          req.destroy(err);
        }, timeout);
      }
      if (body instanceof Readable) {
        body.on('error', (err) => {
          fail(err, false);
          req.destroy(err);
        });
        body.pipe(req);
      } else req.end(body);
    });
  };
  return {
    server,
    async request<T>(options: RequestOptions): Promise<T> {
      const res = await send(options, false);
      const text = await readText(res, server);
      const data = parseJson(text, res.headers['content-type']);
      if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) return data as T;
      throw apiErrorFromBody(res.statusCode ?? 0, res.statusMessage ?? '', data, retryAfterOf(res.headers));
    },
    async stream(options: RequestOptions): Promise<StreamResponse> {
      const res = await send(options, true);
      if (res.statusCode === 200) return { headers: res.headers, body: res };
      const data = parseJson(await readText(res, server), res.headers['content-type']);
      throw apiErrorFromBody(res.statusCode ?? 0, res.statusMessage ?? '', data, retryAfterOf(res.headers));
    },
  };
}

function encode(data: unknown): { body: Buffer | Readable | undefined; bodyHeaders: Record<string, string> } {
  if (data === undefined) return { body: undefined, bodyHeaders: {} };
  if (data instanceof Readable) return { body: data, bodyHeaders: {} };
  const body = Buffer.isBuffer(data) ? data : Buffer.from(JSON.stringify(data));
  return { body, bodyHeaders: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } };
}

function readText(res: IncomingMessage, server: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => resolve(text));
    res.on('error', (err) => reject(err instanceof ConnectionError ? err : new ConnectionError(server, (err as NodeJS.ErrnoException).code ?? err.message)));
    // A connection cut mid-answer ends the message without 'end'.
    res.on('aborted', () => reject(new ConnectionError(server, 'the connection closed mid-answer')));
  });
}

function parseJson(text: string, type: string | undefined): unknown {
  if (text === '') return undefined;
  if (!type?.includes('json')) return text;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function retryAfterOf(headers: IncomingHttpHeaders): number | undefined {
  const seconds = Number(headers['retry-after']);
  return headers['retry-after'] !== undefined && Number.isFinite(seconds) ? seconds * 1000 : undefined;
}

function aborted(): Error {
  return Object.assign(new Error('the request was cancelled'), { name: 'AbortError', code: 'ABORT_ERR' });
}

export function apiErrorFromBody(status: number, statusText: string, data: unknown, retryAfterMs?: number): ApiError {
  const body = data as Partial<ErrorBody> | undefined;
  const code = body?.error?.code;
  if (isErrorCode(code)) return new ApiError(code, body!.error!.message, status, retryAfterMs);
  const why = status === 503 ? 'the server is restarting or shutting down' : `the server answered ${status} ${statusText}`;
  return new ApiError('KHD_INTERNAL', why, status, retryAfterMs);
}
