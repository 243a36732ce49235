import { API_PREFIX, type ErrorBody, type Me } from './wire.js';

const TOKEN_KEY = 'khd.token';
const ME_KEY = 'khd.me';

/**
 * The login of this tab: the token lives in the page's session storage (gone with the tab),
 * never in a URL; every call sends it in the Authorization header, as the CLI does.
 */
export const login = {
  token: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  me: (): Me | null => {
    const text = sessionStorage.getItem(ME_KEY);
    return text ? (JSON.parse(text) as Me) : null;
  },
  save(token: string, me: Me): void {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(ME_KEY, JSON.stringify(me));
  },
  forget(): void {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(ME_KEY);
  },
};

/** An error the server answered, with its code and message as the CLI shows them. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called when the server refuses the token (expired, revoked): the page goes back to the login. */
let onUnauthorized: () => void = () => {};
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export function authHeaders(): Record<string, string> {
  const token = login.token();
  return token ? { authorization: `Bearer ${token}` } : {};
}

export async function errorOf(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as ErrorBody;
    return new ApiError(res.status, body.error.code, body.error.message);
  } catch {
    return new ApiError(res.status, 'KHD_INTERNAL', `the server answered ${res.status} ${res.statusText}`);
  }
}

/** One call to the khd API; JSON in, JSON out. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${API_PREFIX}${path}`, {
    method,
    headers: { ...authHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && path !== '/auth/login') {
    login.forget();
    onUnauthorized();
  }
  if (!res.ok) throw await errorOf(res);
  return (res.status === 204 ? undefined : await res.json()) as T;
}
