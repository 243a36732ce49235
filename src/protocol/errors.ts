/**
 * The one error catalogue shared by the server (HTTP status) and the CLI (exit code).
 * Every server error is `{ error: { code, message } }` with one of these codes.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, auth: 4, interrupted: 130 } as const;

interface ErrorSpec {
  status: number;
  exit: number;
}

export const ERRORS = {
  KHD_BAD_REQUEST: { status: 400, exit: EXIT.failure },
  KHD_INVALID_NAME: { status: 400, exit: EXIT.usage },
  KHD_UNAUTHENTICATED: { status: 401, exit: EXIT.auth },
  KHD_BAD_CREDENTIALS: { status: 401, exit: EXIT.auth },
  KHD_TOKEN_EXPIRED: { status: 401, exit: EXIT.auth },
  KHD_LOGIN_LOCKED: { status: 429, exit: EXIT.auth },
  KHD_TOO_MANY_REQUESTS: { status: 429, exit: EXIT.failure },
  KHD_FORBIDDEN: { status: 403, exit: EXIT.failure },
  KHD_NOT_FOUND: { status: 404, exit: EXIT.failure },
  KHD_SESSION_NOT_FOUND: { status: 404, exit: EXIT.failure },
  KHD_DATASET_NOT_FOUND: { status: 404, exit: EXIT.failure },
  KHD_UPLOAD_NOT_FOUND: { status: 404, exit: EXIT.failure },
  KHD_USER_EXISTS: { status: 409, exit: EXIT.failure },
  KHD_DATASET_EXISTS: { status: 409, exit: EXIT.failure },
  KHD_ENVIRONMENT_EXISTS: { status: 409, exit: EXIT.failure },
  KHD_ENVIRONMENT_NOT_FOUND: { status: 404, exit: EXIT.failure },
  KHD_SESSION_RUNNING: { status: 409, exit: EXIT.failure },
  KHD_UPLOAD_STATE: { status: 409, exit: EXIT.failure },
  KHD_UPLOAD_INVALID: { status: 422, exit: EXIT.failure },
  KHD_DATASET_INVALID: { status: 422, exit: EXIT.failure },
  KHD_TOO_MANY_GPUS: { status: 422, exit: EXIT.failure },
  KHD_CHECKPOINT_NOT_FOUND: { status: 404, exit: EXIT.failure },
  KHD_SUBMIT_NOT_FOUND: { status: 404, exit: EXIT.failure },
  KHD_SUBMIT_BUSY: { status: 409, exit: EXIT.failure },
  KHD_SUBMIT_TOO_SOON: { status: 429, exit: EXIT.failure },
  KHD_SUBMIT_CLOSED: { status: 403, exit: EXIT.failure },
  KHD_SUBMIT_INVALID: { status: 422, exit: EXIT.failure },
  KHD_MODEL_TOO_LARGE: { status: 413, exit: EXIT.failure },
  KHD_PAYLOAD_TOO_LARGE: { status: 413, exit: EXIT.failure },
  KHD_INTERNAL: { status: 500, exit: EXIT.failure },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** The body of every error the server answers. */
export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** Thrown by server modules; the HTTP layer turns it into the error body and status. */
export class KhdError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Sent as `Retry-After` (seconds): when trying again can succeed. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'KhdError';
  }

  get status(): number {
    return ERRORS[this.code].status;
  }
}

export function exitCodeFor(code: ErrorCode): number {
  return ERRORS[code].exit;
}
