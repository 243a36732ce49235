import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseUidRange } from '../../protocol/uid-range.js';
import { uidRangeConflict, UidPool } from './uids.js';

describe('parseUidRange', () => {
  it('reads FIRST-LAST, and refuses what is not a range of ordinary uids', () => {
    expect(parseUidRange('70000-70999')).toEqual({ first: 70000, count: 1000 });
    for (const bad of ['70000', '0-999', '500-2000', '2000-1000', 'a-b', '70000-4294967295']) {
      expect(() => parseUidRange(bad), bad).toThrow(/is not a range of uids: give FIRST-LAST/);
    }
  });
});

describe('uidRangeConflict', () => {
  const files: Record<string, string> = {
    '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\nkim:x:70010:70010::/home/kim:/bin/bash\n',
    '/etc/group': 'root:x:0:\n',
    '/etc/subuid': 'kim:100000:65536\n',
  };
  const read = (f: string) => {
    if (!(f in files)) throw new Error('ENOENT');
    return files[f]!;
  };

  it('names an account of the machine inside the range', () => {
    expect(uidRangeConflict({ first: 70000, count: 1000 }, read)).toBe("/etc/passwd has 'kim' with id 70010, inside the session uids 70000-70999");
  });

  it('names a subordinate-uid range that overlaps it', () => {
    expect(uidRangeConflict({ first: 160000, count: 1000 }, read)).toBe("/etc/subuid gives 'kim' the ids 100000-165535, which overlap the session uids 160000-160999");
  });

  it('finds none where there is none', () => {
    expect(uidRangeConflict({ first: 71000, count: 1000 }, read)).toBeNull();
  });
});

describe.runIf(process.getuid?.() === 0)('UidPool', () => {
  it('never hands out a uid that something already runs as, and says so', async () => {
    const first = 71900;
    // A process running as the first uid of the range, as another server's session would.
    const squatter = spawn('/usr/bin/setpriv', [`--reuid=${first}`, `--regid=${first}`, '--clear-groups', '/bin/sleep', '30'], { stdio: 'ignore' });
    await new Promise((resolve) => squatter.once('spawn', resolve));
    await expect.poll(() => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${squatter.pid}/status`, 'utf8'))?.[1])).toBe(first);
    const quarantined: number[] = [];
    const pool = new UidPool({ first, count: 2 }, (uid) => quarantined.push(uid));
    expect(pool.take()).toBe(first + 1);
    expect(quarantined).toEqual([first]);
    expect(pool.take()).toBeUndefined();
    squatter.kill('SIGKILL');
  });
});
