import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { drained } from './logs.js';

describe('drained', () => {
  it('leaves no listener behind, however many times a long stream waits', async () => {
    const res = new EventEmitter();
    for (let i = 0; i < 50; i++) {
      const wait = drained(res);
      res.emit(i % 2 ? 'drain' : 'close');
      await wait;
    }
    expect(res.listenerCount('drain')).toBe(0);
    expect(res.listenerCount('close')).toBe(0);
  });
});
