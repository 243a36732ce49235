import { describe, expect, it } from 'vitest';
import { boardHeader, boardModel, formatScore, typeText } from './format.js';
import { pathProblem } from './paths.js';
import { formatSessionName, parseSessionName, sessionPath } from './session-name.js';
import { parseDuration, parseSize } from './sizes.js';

describe('session names', () => {
  it('round-trips USER/DATASET/N', () => {
    expect(parseSessionName('kim/mnist/12')).toEqual({ user: 'kim', dataset: 'mnist', number: 12 });
    expect(formatSessionName({ user: 'kim', dataset: 'None', number: 1 })).toBe('kim/None/1');
  });

  it('makes the API path of a session, from its name or its text, each part escaped', () => {
    expect(sessionPath({ user: 'kim', dataset: 'mnist', number: 3 })).toBe('/sessions/kim/mnist/3');
    expect(sessionPath('kim/mnist/3')).toBe('/sessions/kim/mnist/3');
    expect(sessionPath('k m/a?b/3')).toBe('/sessions/k%20m/a%3Fb/3');
  });

  it.each(['kim/mnist', 'kim/mnist/0', 'kim/mnist/01', 'kim/mnist/x', '../mnist/1', 'kim//1', 'kim/mnist/1/2', ''])(
    'refuses %j with the expected form',
    (text) => expect(() => parseSessionName(text)).toThrow(/expected USER\/DATASET\/N/),
  );
});

describe('sizes and durations', () => {
  it.each([
    ['24G', 24 * 1024 ** 3],
    ['300MB', 300 * 1024 ** 2],
    ['512m', 512 * 1024 ** 2],
    ['1.5 GiB', 1.5 * 1024 ** 3],
    ['4096', 4096],
  ])('parses %s', (text, bytes) => expect(parseSize(text)).toBe(bytes));

  it.each(['', 'lots', '-1G', '12X'])('refuses %j', (text) => expect(parseSize(text)).toBeUndefined());

  it('parses durations', () => {
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseDuration('0s')).toBeUndefined();
  });
});

describe('upload paths', () => {
  it.each([
    ['/etc/passwd', /absolute/],
    ['a/../../b', /'\.\.'/],
    ['a//b', /empty/],
    ['./a', /'\.'/],
    ['a\\b', /backslash/],
    ['C:x', /drive-letter/],
    ['a\0b', /NUL/],
    [Array(40).fill('d').join('/'), /deeper than 32/],
  ])('refuses %j', (path, why) => expect(pathProblem(path, 32, 1024)).toMatch(why));

  it('accepts an ordinary nested path', () => expect(pathProblem('src/models/net.py', 32, 1024)).toBeUndefined());
});

describe('scores and boards, as every view shows them', () => {
  it('shows whole scores as they are and others to 6 significant digits', () => {
    expect([1, 22, 0, 0.75, 0.9542465044063757, 0.964070347, 1.234567e-7].map(formatScore)).toEqual(['1', '22', '0', '0.75', '0.954247', '0.96407', '1.23457e-7']);
  });

  it("says what a board ranks by, and its Model as NSML's board did", () => {
    expect(boardHeader({ name: 'toy', metric: 'accuracy', order: 'desc' })).toBe('toy · accuracy · higher is better');
    expect(boardHeader({ name: 'ct', metric: 'custom', order: 'asc' })).toBe("ct · the dataset's evaluation.py · lower is better");
    expect(boardModel({ name: 'kim/breast_cancer/3', model: 'best' })).toBe('/breast_cancer/3/best');
    expect(typeText({ type: 'normal', forkOf: { session: 'kim/x/1', checkpoint: '2' } })).toBe('normal/fork');
    expect(typeText({ type: 'submit(test)', forkOf: null })).toBe('submit(test)');
  });
});

describe('did you mean', () => {
  it('suggests the closest name when it is close enough, and nothing otherwise', async () => {
    const { didYouMean, closestName } = await import('./suggest.js');
    expect(didYouMean('breast_cancr', ['breast_cancer', 'hello_nsml'])).toBe(': did you mean breast_cancer?');
    expect(didYouMean('bset', ['best', '30', '29'])).toBe(': did you mean best?');
    expect(didYouMean('kim/toy/11', ['kim/toy/1', 'kim/toy/2', 'lee/toy/11'])).toBe(': did you mean kim/toy/1?');
    expect(didYouMean('nope', ['best', '1', '2'])).toBe('');
    expect(closestName('MNIST', ['mnist'])).toBe('mnist');
    expect(closestName('x', [])).toBeUndefined();
  });
});

describe('did you mean, for session names', () => {
  it('suggests a session one character off, not one whose number is another', async () => {
    const { didYouMean } = await import('./suggest.js');
    expect(didYouMean('admin/toy/99', ['admin/toy/2', 'admin/toy/1'], 1)).toBe('');
    expect(didYouMean('admin/toy/21', ['admin/toy/2', 'admin/toy/1'], 1)).toBe(': did you mean admin/toy/2?');
  });
});

describe('times as people read them', () => {
  it('writes a moment on the reader’s clock with its zone and how far off it is, or in UTC', async () => {
    const { formatTime, localTimes } = await import('./format.js');
    const now = Date.parse('2026-12-03T11:17:00Z');
    expect(formatTime('2026-12-03T12:10:52.001Z', now, true)).toBe('2026-12-03 12:10 UTC, in 54 minutes');
    expect(localTimes('the next counted submit is allowed at 2026-12-03T12:10:52.001Z (test submits with -t are allowed now)', now, true)).toBe(
      'the next counted submit is allowed at 2026-12-03 12:10 UTC, in 54 minutes (test submits with -t are allowed now)',
    );
    expect(formatTime('2026-12-01T09:00:00+09:00', now, true)).toBe('2026-12-01 00:00 UTC, 2 days ago');
    expect(formatTime('not a time', now)).toBe('not a time');
  });

  it('says how long ago exactly as Intl.RelativeTimeFormat (en, numeric: auto) would, without paying for one', async () => {
    const { timeAgo } = await import('./format.js');
    const intl = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
    const now = Date.parse('2026-12-03T11:17:00Z');
    const units: [Intl.RelativeTimeFormatUnit, number][] = [['second', 1], ['minute', 60], ['hour', 3600], ['day', 86400], ['month', 86400 * 30], ['year', 86400 * 360]];
    const bounds = [60, 60, 24, 30, 12, 1500];
    let checked = 0;
    units.forEach(([unit, seconds], i) => {
      for (let n = -bounds[i]! + 1; n < bounds[i]!; n++) {
        // Half a unit off the whole number: rounding must land on n, as for real times.
        const at = new Date(now + (n * seconds + (n < 0 ? -0.2 : 0.2) * seconds) * 1000).toISOString();
        if (n === 0 && unit !== 'second') continue;
        expect(timeAgo(at, now), `${n} ${unit}`).toBe(intl.format(n, unit));
        checked++;
      }
    });
    expect(checked).toBeGreaterThan(3000);
    expect(timeAgo(new Date(now).toISOString(), now)).toBe('now');
  });
});
