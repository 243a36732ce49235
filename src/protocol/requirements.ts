/**
 * What a project asks of its Python stack, read the way NSML read it: the `#nsml: IMAGE` first
 * line of setup.py or requirements.txt, and requirements.txt in pip's syntax. Shared by the CLI
 * (`khd run --dry-run` shows the choice) and the server; no I/O here.
 */

/** The image a file's first line names (`#nsml: nsml/ml:cuda9.0…`, also `# nsml:`), or null. */
export function imageLine(text: string): string | null {
  const first = text.split(/\r?\n/, 1)[0] ?? '';
  const m = /^\s*#\s*nsml:\s*(\S.*?)\s*$/i.exec(first);
  return m ? m[1]! : null;
}

/** The files that can name an image, in the order NSML looked at them. */
export const IMAGE_FILES = ['setup.py', 'requirements.txt'] as const;

/** PEP 503's normal form of a project name: `Scikit_Learn` and `scikit-learn` are one project. */
export function normalName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

export interface Requirement {
  /** The project's normal name. */
  name: string;
  /** The requirement as pip takes it, normalised (name in normal form, spaces removed outside markers). */
  text: string;
}

export interface ParsedRequirements {
  requirements: Requirement[];
  /** Lines left out, each with why (an index option is the organiser's to set, not the project's). */
  ignored: string[];
  /** Files included with `-r`, relative to the project, to be read and parsed in turn. */
  includes: string[];
}

const NAME = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(\[[^\]]*\])?\s*(.*)$/;
const INDEX_OPTIONS = /^(-i|--index-url|--extra-index-url|-f|--find-links|--trusted-host|--no-index|--pre|--prefer-binary|--only-binary|--no-binary)\b/;

/** Parses requirements.txt (pip's syntax: comments, continuations, `-r`, options, markers). */
export function parseRequirementsTxt(text: string): ParsedRequirements {
  const out: ParsedRequirements = { requirements: [], ignored: [], includes: [] };
  const joined = text.replace(/\\\r?\n/g, ' ');
  for (const raw of joined.split(/\r?\n/)) {
    // A comment starts a line, or follows whitespace (a URL may hold '#').
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const include = /^(-r|--requirement)(?:\s+|=)(\S+)$/.exec(line);
    if (include) {
      out.includes.push(include[2]!);
      continue;
    }
    if (INDEX_OPTIONS.test(line)) {
      out.ignored.push(`${line}: the server's index is the organiser's to choose`);
      continue;
    }
    if (line.startsWith('-')) {
      out.ignored.push(`${line}: not a requirement khd installs (editable installs and constraints are not supported)`);
      continue;
    }
    const parsed = parseRequirement(line);
    if (parsed) out.requirements.push(parsed);
    else out.ignored.push(`${line}: not a requirement pip would read`);
  }
  return out;
}

/** One requirement (`Torch>=1.13 ; python_version < "3.12"`, `pkg @ https://…`), or null. */
export function parseRequirement(line: string): Requirement | null {
  // Per-requirement options (--hash=…) do not change what is installed here.
  const cleaned = line.replace(/\s--hash[=\s]\S+/g, '').trim();
  const m = NAME.exec(cleaned);
  if (!m) return null;
  const [, name, extras = '', rest = ''] = m;
  const [spec, marker] = rest.split(/;(.*)/s, 2).map((s) => s?.trim() ?? '');
  if (spec && !/^(@|[<>=!~(])/.test(spec)) return null;
  const text = `${normalName(name!)}${extras.replace(/\s+/g, '')}${spec!.startsWith('@') ? ` ${spec}` : spec!.replace(/\s+/g, '')}${marker ? ` ; ${marker}` : ''}`;
  return { name: normalName(name!), text };
}

/** The requirements in a stable order, each once: what a layer's cache key is made of. */
export function normalise(requirements: Requirement[]): Requirement[] {
  const seen = new Map<string, Requirement>();
  for (const r of requirements) seen.set(r.text, r);
  return [...seen.values()].sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}
