import { KhdError } from './errors.js';

/** Users and datasets share one naming rule so that `USER/DATASET/N` parses unambiguously. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const NO_DATASET = 'None';

export interface SessionName {
  user: string;
  dataset: string;
  number: number;
}

export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name) && name !== NO_DATASET;
}

export function checkName(kind: string, name: string): string {
  if (!isValidName(name)) {
    throw new KhdError(
      'KHD_INVALID_NAME',
      `invalid ${kind} name '${name}': use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit`,
    );
  }
  return name;
}

export function formatSessionName(name: SessionName): string {
  return `${name.user}/${name.dataset}/${name.number}`;
}

/** The API path of a session (`/sessions/kim/mnist/3`), for the CLI and the dashboard alike. */
export function sessionPath(name: SessionName | string): string {
  const text = typeof name === 'string' ? name : formatSessionName(name);
  return `/sessions/${text.split('/').map(encodeURIComponent).join('/')}`;
}

export function parseSessionName(text: string): SessionName {
  const parts = text.split('/');
  const [user, dataset, number] = parts;
  const ok =
    parts.length === 3 &&
    NAME_PATTERN.test(user!) &&
    NAME_PATTERN.test(dataset!) &&
    /^[1-9][0-9]{0,8}$/.test(number!);
  if (!ok) {
    throw new KhdError(
      'KHD_INVALID_NAME',
      `'${text}' is not a session name: expected USER/DATASET/N, e.g. kim/mnist/3`,
    );
  }
  return { user: user!, dataset: dataset!, number: Number(number) };
}
