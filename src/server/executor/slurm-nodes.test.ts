import { describe, expect, it } from 'vitest';
import { slurmNodes } from './slurm-setup.js';
import { pendingReason, runTimeMs } from './slurm-state.js';

describe('what sinfo says about the nodes', () => {
  it('takes the largest node of each kind: GPUs (typed or not), memory, CPUs', () => {
    const sinfo = ['gpu:2|8000|2', 'gpu:v100:4(S:0-1)|192000|40', '(null)|4000|8', 'gpu:p40:1,gpu:t4:2|64000|16', ''].join('\n');
    expect(slurmNodes(sinfo)).toEqual({ gpus: 4, memoryBytes: 192000 * 1024 ** 2, cpus: 40 });
  });

  it('finds nothing where sinfo lists no node', () => {
    expect(slurmNodes('')).toEqual({ gpus: 0, memoryBytes: 0, cpus: 0 });
  });
});

describe('why Slurm holds a job', () => {
  it('says it in words, with the code beside', () => {
    expect(pendingReason('Resources')).toBe("the cluster's GPUs or nodes are in use (Slurm: Resources)");
    expect(pendingReason('ReqNodeNotAvail,_UnavailableNodes:gpu3')).toBe('the nodes it needs are down or drained (Slurm: ReqNodeNotAvail,_UnavailableNodes:gpu3)');
    expect(pendingReason('QOSGrpGRES')).toBe('a cluster quota is in use (Slurm: QOSGrpGRES)');
    expect(pendingReason('Licenses')).toBe('held by Slurm (Slurm: Licenses)');
  });
});

describe("Slurm's RunTime", () => {
  it('reads hours, minutes and seconds, and days', () => {
    expect(runTimeMs('00:00:07')).toBe(7000);
    expect(runTimeMs('01:02:03')).toBe(3723_000);
    expect(runTimeMs('2-00:00:01')).toBe((2 * 86400 + 1) * 1000);
    expect(runTimeMs('INVALID')).toBe(0);
  });
});
