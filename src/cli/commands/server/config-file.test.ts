import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../context.js';
import { applyConfigFile } from './config-file.js';
import { newServerCommand, type ServerCommandOptions } from './server.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'khd-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** `khd server ARGS --config FILE` as the command would read it (flags parsed, then the file). */
function read(config: unknown, args: string[] = []) {
  const file = join(dir, 'server.json');
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  const command = newServerCommand({} as Context);
  command.parseOptions(args);
  const more = applyConfigFile(command, file);
  return { ...(command.opts() as ServerCommandOptions), ...more };
}

describe('khd server --config FILE', () => {
  it("reads the flags' names as keys with the flags' parsers; the file-only keys too", () => {
    const opts = read({
      executor: 'slurm', 'slurm-partition': 'v100', 'session-timeout': '12h', 'max-gpus-per-team': 1, sandbox: false,
      'slurm-sbatch-args': ['--constraint=v100', '--nice=10'],
    });
    expect(opts).toMatchObject({
      executor: 'slurm', slurmPartition: 'v100', sessionTimeout: 12 * 3600_000, maxGpusPerTeam: 1, sandbox: false,
      slurmSbatchArgs: ['--constraint=v100', '--nice=10'],
    });
  });

  it('lets a flag on the command line win over the file', () => {
    expect(read({ 'slurm-partition': 'v100', port: 9000 }, ['--slurm-partition', 'p40'])).toMatchObject({ slurmPartition: 'p40', port: 9000 });
  });

  it('names each bad key or value, and what to write instead', () => {
    expect(() => read({ partition: 'v100' })).toThrow(/"partition" is not a setting: use the name of one of khd server's flags without --, or slurm-sbatch-args/);
    expect(() => read({ executor: 'kubernetes' })).toThrow(/"executor": --executor must be one of local, slurm/);
    expect(() => read({ 'max-gpus-per-team': 0 })).toThrow(/"max-gpus-per-team": expected a whole number ≥ 1/);
    expect(() => read({ sandbox: 'no' })).toThrow(/"sandbox" is true or false/);
    expect(() => read({ 'slurm-sbatch-args': '--constraint=v100' })).toThrow(/is a list of sbatch options, e.g. \["--constraint=v100"\]/);
    expect(() => read('{"executor": ')).toThrow(/server.json: not valid JSON/);
    expect(() => read(['slurm'])).toThrow(/give a JSON object of settings/);
    expect(() => applyConfigFile(newServerCommand({} as Context), join(dir, 'missing.json'))).toThrow(/missing.json: ENOENT/);
  });
});
