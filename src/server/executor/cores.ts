/**
 * Which cores pinned sessions run on: each takes the least used ones, so two 2-CPU sessions on
 * a 4-core machine get two cores each instead of sharing the first two while the others idle.
 */
export class CoreSets {
  private readonly use: number[];

  constructor(cores: number) {
    this.use = new Array<number>(cores).fill(0);
  }

  take(count: number): number[] {
    const picked = this.use
      .map((n, core) => ({ n, core }))
      .sort((a, b) => a.n - b.n || a.core - b.core)
      .slice(0, count)
      .map((c) => c.core)
      .sort((a, b) => a - b);
    picked.forEach((c) => this.use[c]!++);
    return picked;
  }

  release(cores: number[]): void {
    cores.forEach((c) => this.use[c]!--);
  }
}
