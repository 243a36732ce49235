import { describe, expect, it } from 'vitest';
import { startFailure } from './server.js';

const err = (fields: Partial<NodeJS.ErrnoException>) => Object.assign(new Error('raw'), fields) as NodeJS.ErrnoException;

describe('startFailure', () => {
  it('says what to do about the port', () => {
    expect(startFailure(err({ syscall: 'listen', code: 'EADDRINUSE' }), '127.0.0.1', 8757, '/d').message).toBe(
      '127.0.0.1:8757 is already in use: stop what listens there, or pick another --port',
    );
    expect(startFailure(err({ syscall: 'listen', code: 'EACCES' }), '0.0.0.0', 80, '/d').message).toMatch(/use a port above 1023/);
    expect(startFailure(err({ syscall: 'listen', code: 'EADDRNOTAVAIL' }), '10.9.9.9', 1, '/d').message).toMatch(/not an address/);
  });

  it('names the data dir and the path that failed', () => {
    expect(startFailure(err({ code: 'ENOTDIR', path: '/etc/hostname/x' }), 'h', 1, '/etc/hostname/x').message).toBe(
      'cannot use the data dir /etc/hostname/x (ENOTDIR on /etc/hostname/x): pick another with --data-dir',
    );
  });

  it('keeps any other reason as a sentence, without a stack', () => {
    const e = startFailure(err({ message: "cannot run Python '/nope'" }), 'h', 1, '/d');
    expect(e.message).toBe("the server could not start: cannot run Python '/nope'");
    expect(e.exitCode).toBe(1);
  });
});
