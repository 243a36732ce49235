import { describe, expect, it } from 'vitest';
import type { SessionInfo } from '../../../protocol/types.js';
import { expandPatterns } from './patterns.js';

const s = (name: string) => ({ name }) as SessionInfo;
const sessions = ['kim/mnist/1', 'kim/mnist/10', 'kim/mnist/2', 'kim/cifar/1', 'kim/None/1'].map(s);

describe('expandPatterns', () => {
  it('expands globs against the sessions, as NSML’s rm did', () => {
    expect(expandPatterns(['kim/mnist/1*'], sessions).names).toEqual(['kim/mnist/1', 'kim/mnist/10']);
    expect(expandPatterns(['kim/*/1'], sessions).names).toEqual(['kim/mnist/1', 'kim/cifar/1', 'kim/None/1']);
  });

  it('takes a plain name as it is and reports patterns that match nothing', () => {
    expect(expandPatterns(['kim/mnist/99', 'lee/*/1'], sessions)).toEqual({ names: ['kim/mnist/99'], unmatched: ['lee/*/1'] });
  });

  it('names each session once when patterns overlap', () => {
    expect(expandPatterns(['kim/mnist/*', 'kim/mnist/1'], sessions).names).toEqual(['kim/mnist/1', 'kim/mnist/10', 'kim/mnist/2']);
  });
});
