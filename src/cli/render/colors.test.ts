import { describe, expect, it } from 'vitest';
import { errorPrefix, paintOf, paintStatus } from './colors.js';

describe('colour with a meaning', () => {
  it('paints statuses and errors where colour is on, and nothing where it is off', () => {
    const on = paintOf(true);
    expect(paintStatus(on, { status: 'Running', exitCode: null }, 'Running')).toBe('\x1b[32mRunning\x1b[39m');
    expect(paintStatus(on, { status: 'Failed', exitCode: null }, 'Failed')).toBe('\x1b[31mFailed\x1b[39m');
    expect(paintStatus(on, { status: 'Exited', exitCode: 0 }, 'Exited (0)')).toBe('Exited (0)');
    expect(paintStatus(on, { status: 'Exited', exitCode: 2 }, 'Exited (2)')).toBe('\x1b[31mExited (2)\x1b[39m');
    expect(errorPrefix({ colorErr: true })).toBe('\x1b[31merror:\x1b[39m');
    const off = paintOf(false);
    expect(paintStatus(off, { status: 'Queued', exitCode: null }, 'Queued: waiting')).toBe('Queued: waiting');
    expect(errorPrefix({ colorErr: false })).toBe('error:');
  });
});
