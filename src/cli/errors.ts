import { EXIT } from '../protocol/errors.js';

/** A failure the participant can act on; `main` prints the message and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}

export class NotLoggedInError extends CliError {
  constructor(server: string) {
    super(`not logged in to ${server}: run khd login`, EXIT.auth);
    this.name = 'NotLoggedInError';
  }
}

/** Ends the command with a given exit code and nothing more to say (e.g. the session's own). */
export class SilentExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'SilentExit';
  }
}
