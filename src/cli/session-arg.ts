import { KhdError } from '../protocol/errors.js';
import { parseSessionName, type SessionName } from '../protocol/session-name.js';
import { UsageError } from './errors.js';

/** A session argument, or a usage error (exit 2) that shows the expected form. */
export function sessionArg(text: string): SessionName {
  try {
    return parseSessionName(text);
  } catch (err) {
    if (err instanceof KhdError) throw new UsageError(err.message);
    throw err;
  }
}
