import { execFileSync } from 'node:child_process';
import type { Admission } from './executor.js';

/** The number of GPUs `nvidia-smi -L` lists, or 0 where there is no NVIDIA driver. */
export function detectGpuCount(): number {
  try {
    const out = execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').filter((line) => line.startsWith('GPU ')).length;
  } catch {
    return 0;
  }
}

/** Hands out this machine's GPU indices; a session holds its GPUs from start to end. */
export class GpuPool implements Admission {
  private readonly busy = new Set<number>();

  constructor(readonly gpus: number) {}

  get free(): number {
    return this.gpus - this.busy.size;
  }

  take(count: number): number[] | undefined {
    if (count > this.free) return undefined;
    const ids: number[] = [];
    for (let i = 0; i < this.gpus && ids.length < count; i++) {
      if (!this.busy.has(i)) ids.push(i);
    }
    ids.forEach((i) => this.busy.add(i));
    return ids;
  }

  release(ids: number[]): void {
    ids.forEach((i) => this.busy.delete(i));
  }
}
