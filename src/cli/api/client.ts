import axios, { AxiosError, type AxiosInstance, type AxiosRequestConfig } from 'axios';
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

export interface ApiClient {
  server: string;
  http: AxiosInstance;
  request<T>(config: AxiosRequestConfig): Promise<T>;
}

export function createApiClient(server: string, token: string | undefined): ApiClient {
  const http = axios.create({
    baseURL: `${server}${API_PREFIX}`,
    timeout: REQUEST_TIMEOUT_MS,
    headers: { 'User-Agent': `khd/${VERSION}`, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    maxBodyLength: Infinity,
    maxContentLength: Infinity,
    // Redirects would resend the token to wherever they point.
    maxRedirects: 0,
  });
  return {
    server,
    http,
    async request<T>(config: AxiosRequestConfig): Promise<T> {
      try {
        return (await http.request<T>(config)).data;
      } catch (err) {
        throw toApiError(err, server);
      }
    },
  };
}

/** Turns an axios failure into ApiError or ConnectionError; the token never appears in either. */
export function toApiError(err: unknown, server: string): Error {
  if (!(err instanceof AxiosError)) return err as Error;
  if (!err.response) {
    if (err.code === 'ERR_CANCELED') return err;
    return new ConnectionError(server, err.code === 'ECONNABORTED' ? 'timed out' : (err.code ?? err.message));
  }
  const retryAfter = Number(err.response.headers['retry-after']);
  return apiErrorFromBody(err.response.status, err.response.statusText, err.response.data, Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined);
}

export function apiErrorFromBody(status: number, statusText: string, data: unknown, retryAfterMs?: number): ApiError {
  const body = data as Partial<ErrorBody> | undefined;
  const code = body?.error?.code;
  if (isErrorCode(code)) return new ApiError(code, body!.error!.message, status, retryAfterMs);
  const why = status === 503 ? 'the server is restarting or shutting down' : `the server answered ${status} ${statusText}`;
  return new ApiError('KHD_INTERNAL', why, status, retryAfterMs);
}
