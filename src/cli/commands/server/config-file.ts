import { readFileSync } from 'node:fs';
import type { Command, Option } from 'commander';
import { CliError } from '../../errors.js';

/** Keys a config file may have that no flag has: what is too long for a command line. */
export const FILE_ONLY_KEYS = ['slurm-sbatch-args'] as const;

export interface FileOnlySettings {
  /** Further sbatch options for every job (`--constraint=v100`, `--nice=10`). */
  slurmSbatchArgs?: string[];
}

/**
 * `khd server --config FILE`: a JSON object whose keys are the server's long flags without `--`
 * (`"executor": "slurm"`, `"slurm-partition": "v100"`, `"session-timeout": "12h"`, `"sandbox":
 * false` for --no-sandbox), read with the same parsers as the flags, and the keys no flag has
 * (FILE_ONLY_KEYS). A flag given on the command line wins over the file. Each bad key or value
 * is named with what to write instead.
 */
export function applyConfigFile(command: Command, file: string): FileOnlySettings {
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const why = err instanceof SyntaxError ? `not valid JSON (${err.message})` : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    throw new CliError(`--config ${file}: ${why}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new CliError(`--config ${file}: give a JSON object of settings, e.g. {"executor": "slurm"}`);
  const byKey = new Map<string, Option>();
  for (const option of command.options) {
    const long = option.long?.replace(/^--(no-)?/, '');
    if (long && long !== 'config') byKey.set(long, option);
  }
  const settings: FileOnlySettings = {};
  for (const [key, value] of Object.entries(config)) {
    const where = `--config ${file}: "${key}"`;
    if (key === 'slurm-sbatch-args') {
      if (!Array.isArray(value) || !value.every((a) => typeof a === 'string' && a.startsWith('-'))) {
        throw new CliError(`${where} is a list of sbatch options, e.g. ["--constraint=v100"]`);
      }
      settings.slurmSbatchArgs = value as string[];
      continue;
    }
    const option = byKey.get(key);
    if (!option) {
      throw new CliError(`${where} is not a setting: use the name of one of khd server's flags without --, or ${FILE_ONLY_KEYS.join(', ')}`);
    }
    const attribute = option.attributeName();
    // The command line wins.
    if (command.getOptionValueSource(attribute) === 'cli') continue;
    if (option.negate || option.isBoolean()) {
      if (typeof value !== 'boolean') throw new CliError(`${where} is true or false`);
      command.setOptionValueWithSource(attribute, value, 'config');
      continue;
    }
    if (typeof value !== 'string' && typeof value !== 'number') throw new CliError(`${where} takes what --${key} takes, as a string or a number`);
    let parsed: unknown = String(value);
    try {
      if (option.parseArg) parsed = option.parseArg(String(value), undefined);
    } catch (err) {
      throw new CliError(`${where}: ${(err as Error).message.replace(/^error: /, '')}`);
    }
    command.setOptionValueWithSource(attribute, parsed, 'config');
  }
  return settings;
}
