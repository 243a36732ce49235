import uPlot from 'uplot';
import { metricName, type MetricPoint } from './wire.js';

/** The chart a metric belongs to: `train/loss` and `train/acc` share `train`; `loss` is its own. */
export function groupOf(name: string): string {
  const slash = name.indexOf('/');
  return slash > 0 ? name.slice(0, slash) : name;
}

const COLOURS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#4b5563'];

interface Group {
  figure: HTMLElement;
  plotArea: HTMLElement;
  latest: HTMLElement;
  names: string[];
  /** x → values of this group's metrics at x. */
  rows: Map<number, Map<string, number>>;
  plot?: uPlot;
}

/**
 * One chart per metric group, against the step (the report's count when no step was given),
 * gaining points as reports arrive. Each figure says how many points it holds and the latest
 * values in text, for those who cannot see the chart.
 */
export class MetricCharts {
  private readonly groups = new Map<string, Group>();
  private reports = 0;
  private readonly resize = new ResizeObserver(() => {
    for (const g of this.groups.values()) g.plot?.setSize(this.size(g));
  });

  constructor(private readonly container: HTMLElement) {
    this.resize.observe(container);
  }

  add(points: MetricPoint[]): void {
    const touched = new Set<Group>();
    for (const point of points) {
      this.reports += 1;
      const x = point.step ?? this.reports;
      for (const [key, value] of Object.entries(point.metrics)) {
        const name = metricName(key);
        const group = this.group(groupOf(name));
        if (!group.names.includes(name)) {
          group.names.push(name);
          group.plot?.destroy();
          group.plot = undefined;
        }
        let row = group.rows.get(x);
        if (!row) group.rows.set(x, (row = new Map()));
        row.set(name, value);
        touched.add(group);
      }
    }
    for (const group of touched) this.draw(group);
  }

  destroy(): void {
    this.resize.disconnect();
    for (const g of this.groups.values()) g.plot?.destroy();
  }

  private group(name: string): Group {
    let group = this.groups.get(name);
    if (group) return group;
    const figure = document.createElement('figure');
    figure.className = 'chart';
    figure.dataset.group = name;
    const caption = document.createElement('figcaption');
    caption.textContent = name;
    const plotArea = document.createElement('div');
    plotArea.setAttribute('role', 'img');
    plotArea.setAttribute('aria-label', `chart of ${name} against step`);
    const latest = document.createElement('p');
    latest.className = 'latest';
    figure.append(caption, plotArea, latest);
    // Charts in the order of their names, so a reload shows the same page.
    const after = [...this.groups.keys()].sort().find((other) => other > name);
    this.container.insertBefore(figure, after ? this.groups.get(after)!.figure : null);
    group = { figure, plotArea, latest, names: [], rows: new Map() };
    this.groups.set(name, group);
    return group;
  }

  private size(group: Group): { width: number; height: number } {
    return { width: Math.max(240, group.figure.clientWidth - 16), height: 220 };
  }

  private draw(group: Group): void {
    const xs = [...group.rows.keys()].sort((a, b) => a - b);
    const data: uPlot.AlignedData = [xs, ...group.names.map((n) => xs.map((x) => group.rows.get(x)!.get(n) ?? null))];
    if (group.plot) group.plot.setData(data);
    else {
      group.plot = new uPlot(
        {
          ...this.size(group),
          scales: { x: { time: false } },
          axes: [{ label: 'step' }, {}],
          series: [
            { label: 'step' },
            ...group.names.map((n, i) => ({ label: n, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true, points: { show: xs.length < 60 } })),
          ],
        },
        data,
        group.plotArea,
      );
    }
    group.figure.dataset.points = String(xs.length);
    const last = xs[xs.length - 1]!;
    const values = group.names
      .map((n) => [n, group.rows.get(last)!.get(n)] as const)
      .filter(([, v]) => v !== undefined)
      .map(([n, v]) => `${n} ${Number(v!.toPrecision(4))}`);
    group.latest.textContent = `${xs.length} point${xs.length === 1 ? '' : 's'}; at step ${last}: ${values.join(', ')}`;
  }
}
