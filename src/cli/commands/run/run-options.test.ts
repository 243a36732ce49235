import { describe, expect, it } from 'vitest';
import { UsageError } from '../../errors.js';
import { parseRunOptions } from './run-options.js';
import type { RunOptions } from './run.js';

const base: RunOptions = { entry: 'main.py', cpus: 2, memory: '24G', shmSize: '1G' };

describe('parseRunOptions', () => {
  it('splits -a like a shell, keeping quoted words together', () => {
    expect(parseRunOptions({ ...base, args: `--lr 0.1 --name "two words" --x='a b'` }).args).toEqual([
      '--lr', '0.1', '--name', 'two words', '--x=a b',
    ]);
  });

  it('refuses shell operators in -a instead of running them', () => {
    expect(() => parseRunOptions({ ...base, args: '--lr 1; rm -rf /' })).toThrow(UsageError);
    expect(() => parseRunOptions({ ...base, args: 'x | y' })).toThrow(/shell syntax/);
  });

  it('parses sizes and refuses nonsense with the flag named', () => {
    expect(parseRunOptions(base)).toMatchObject({ memory: 24 * 1024 ** 3, shmSize: 1024 ** 3 });
    expect(() => parseRunOptions({ ...base, memory: 'lots' })).toThrow(/--memory 'lots' is not a size/);
  });

  it('refuses an empty entry, saying what -e takes', () => {
    expect(() => parseRunOptions({ ...base, entry: '' })).toThrow('-e needs the Python file to run, e.g. -e main.py');
  });

  it('refuses an entry outside the project', () => {
    expect(() => parseRunOptions({ ...base, entry: '../x.py' })).toThrow(/inside the project/);
    expect(() => parseRunOptions({ ...base, entry: '/abs.py' })).toThrow(UsageError);
  });
});
