import type { UploadLimits } from '../protocol/types.js';
import type { IncludedFile } from './scan.js';

const fmt = (n: number) => n.toLocaleString('en-US');

function mb(n: number): string {
  return `${(n / 1024 ** 2).toFixed(1)} MB`;
}

/** The biggest top-level folders (by bytes, then files), as `.nsmlignore` would name them. */
function biggestFolders(files: IncludedFile[], top: number): { path: string; files: number; bytes: number }[] {
  const folders = new Map<string, { files: number; bytes: number }>();
  for (const f of files) {
    const slash = f.path.indexOf('/');
    if (slash === -1) continue;
    const dir = f.path.slice(0, slash);
    const agg = folders.get(dir) ?? { files: 0, bytes: 0 };
    agg.files += 1;
    agg.bytes += f.size;
    folders.set(dir, agg);
  }
  return [...folders].map(([path, a]) => ({ path, ...a })).sort((a, b) => b.bytes - a.bytes || b.files - a.files).slice(0, top);
}

/**
 * Checks the packaged files against the server's limits before anything is sent. Returns the
 * explanation (what is over, the largest files and folders, `.nsmlignore` lines to try), or
 * undefined when the upload fits.
 */
export function limitProblem(files: IncludedFile[], limits: UploadLimits): string | undefined {
  const total = files.reduce((s, f) => s + f.size, 0);
  const over: string[] = [];
  if (files.length > limits.maxFiles) over.push(`${fmt(files.length)} files (the server takes ${fmt(limits.maxFiles)})`);
  if (total > limits.maxTotalBytes) over.push(`${mb(total)} in all (the server takes ${mb(limits.maxTotalBytes)})`);
  const tooBig = files.filter((f) => f.size > limits.maxFileBytes);
  if (tooBig.length > 0) over.push(`${tooBig.length} file(s) over ${mb(limits.maxFileBytes)} each`);
  const tooDeep = files.filter((f) => f.path.split('/').length > limits.maxDepth);
  if (tooDeep.length > 0) over.push(`${tooDeep.length} file(s) deeper than ${limits.maxDepth} folders`);
  if (over.length === 0) return undefined;
  const largest = [...files].sort((a, b) => b.size - a.size).slice(0, 5);
  const folders = biggestFolders(files, 5);
  const lines = [`the project is over the server's upload limits: ${over.join('; ')}.`];
  if (folders.length > 0) lines.push('Largest folders:', ...folders.map((d) => `  ${d.path}/  ${fmt(d.files)} files, ${mb(d.bytes)}`));
  lines.push('Largest files:', ...largest.map((f) => `  ${f.path}  ${mb(f.size)}`));
  const suggest = [...new Set([...(folders[0] ? [`${folders[0].path}/`] : []), ...tooBig.map((f) => f.path), ...largest.slice(0, 2).map((f) => f.path)])];
  lines.push('Leave out what the session does not need, e.g. in .nsmlignore:', ...suggest.slice(0, 4).map((s) => `  ${s}`));
  return lines.join('\n');
}

/** Paths that would collide on a case-insensitive or normalising file system: refused, named. */
export function collisionProblem(files: IncludedFile[]): string | undefined {
  const seen = new Map<string, string>();
  for (const f of files) {
    const key = f.path.normalize('NFC').toLowerCase();
    const twin = seen.get(key);
    if (twin !== undefined) return `'${twin}' and '${f.path}' differ only by case or Unicode normalisation: rename one (they would collide)`;
    seen.set(key, f.path);
  }
  return undefined;
}
