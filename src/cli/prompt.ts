import type { Context } from './context.js';
import { UsageError } from './errors.js';

/** Reads all of stdin; the one trailing newline `echo` adds is not part of the password. */
export async function readStdin(ctx: Context): Promise<string> {
  let text = '';
  for await (const chunk of ctx.io.stdin) text += (chunk as Buffer).toString('utf8');
  return text.replace(/\r?\n$/, '');
}

export async function promptFor(ctx: Context, message: string, hidden: boolean): Promise<string> {
  if (!ctx.io.stdinIsTTY) {
    throw new UsageError(`no terminal to ask for the ${message.toLowerCase()}: pass it with a flag (see --help)`);
  }
  const context = { input: ctx.io.stdin, output: ctx.io.stderr };
  if (hidden) {
    const { default: password } = await import('@inquirer/password');
    return password({ message, mask: true }, context);
  }
  const { default: input } = await import('@inquirer/input');
  return input({ message }, context);
}
