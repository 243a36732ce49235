import type { Db } from './db.js';
import type { EnvironmentInfo } from '../../protocol/types.js';

/** What a probe of the interpreter found: its version, its packages, whether it sees GPUs. */
export interface ProbedInfo {
  version: string | null;
  /** Every installed distribution, by normal name: what a project's requirements are checked against. */
  installed: Record<string, string>;
  gpus: boolean;
}

export interface EnvironmentRow {
  name: string;
  python: string;
  aliases: string[];
  isDefault: boolean;
  description: string;
  info: ProbedInfo;
}

interface Raw {
  name: string;
  python: string;
  aliases: string;
  is_default: number;
  description: string;
  info: string;
}

const toRow = (r: Raw): EnvironmentRow => ({
  name: r.name,
  python: r.python,
  aliases: JSON.parse(r.aliases) as string[],
  isDefault: r.is_default === 1,
  description: r.description,
  info: { version: null, installed: {}, gpus: false, ...(JSON.parse(r.info) as Partial<ProbedInfo>) },
});

/** Environments the organiser registered, and the system packages projects asked for in vain. */
export class EnvironmentStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  list(): EnvironmentRow[] {
    return (this.db.prepare('SELECT * FROM environments ORDER BY name').all() as Raw[]).map(toRow);
  }

  byName(name: string): EnvironmentRow | undefined {
    const r = this.db.prepare('SELECT * FROM environments WHERE name = ?').get(name) as Raw | undefined;
    return r && toRow(r);
  }

  /** Adds one; `isDefault` takes the default from any other, in one transaction. */
  insert(row: EnvironmentRow): void {
    this.db.transaction(() => {
      if (row.isDefault) this.db.prepare('UPDATE environments SET is_default = 0').run();
      this.db
        .prepare('INSERT INTO environments (name, python, aliases, is_default, description, info, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(row.name, row.python, JSON.stringify(row.aliases), row.isDefault ? 1 : 0, row.description, JSON.stringify(row.info), this.now());
    })();
  }

  remove(name: string): boolean {
    return this.db.prepare('DELETE FROM environments WHERE name = ?').run(name).changes === 1;
  }

  noteMissing(names: string[]): void {
    const note = this.db.prepare(
      'INSERT INTO missing_packages (name, sessions, last_at) VALUES (?, 1, ?) ON CONFLICT (name) DO UPDATE SET sessions = sessions + 1, last_at = excluded.last_at',
    );
    this.db.transaction(() => names.forEach((n) => note.run(n, this.now())))();
  }

  missing(): { name: string; sessions: number; lastAskedAt: string }[] {
    return (this.db.prepare('SELECT name, sessions, last_at FROM missing_packages ORDER BY sessions DESC, name').all() as { name: string; sessions: number; last_at: number }[]).map(
      (r) => ({ name: r.name, sessions: r.sessions, lastAskedAt: new Date(r.last_at).toISOString() }),
    );
  }
}

/** The main packages `khd env ls` shows, as NSML's image list told participants what each image held. */
export const MAIN_PACKAGES = ['torch', 'torchvision', 'tensorflow', 'keras', 'numpy', 'scipy', 'scikit-learn', 'pandas', 'opencv-python', 'pillow'];

export function toInfo(row: EnvironmentRow, builtIn: boolean, isDefault: boolean): EnvironmentInfo {
  const packages = Object.fromEntries(MAIN_PACKAGES.filter((p) => row.info.installed[p]).map((p) => [p, row.info.installed[p]!]));
  return {
    name: row.name, kind: 'python', python: row.python, aliases: row.aliases, default: isDefault, description: row.description,
    version: row.info.version, packages, gpus: row.info.gpus, builtIn,
  };
}
