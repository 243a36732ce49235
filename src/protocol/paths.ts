/**
 * The one rule for a path inside an upload, checked by the CLI before sending and by the
 * server before anything reaches disk: relative, forward slashes, no `.`/`..`/empty parts.
 * Returns why the path is refused, or undefined when it is fine.
 */
export function pathProblem(path: string, maxDepth: number, maxLength: number): string | undefined {
  if (path.length === 0) return 'empty path';
  if (path.length > maxLength) return `path longer than ${maxLength} characters`;
  if (path.includes('\0')) return 'path contains a NUL byte';
  if (path.includes('\\')) return 'path contains a backslash';
  if (path.startsWith('/')) return 'absolute path';
  if (/^[A-Za-z]:/.test(path)) return 'drive-letter path';
  const parts = path.replace(/\/$/, '').split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return "path has an empty, '.' or '..' part";
  if (parts.length > maxDepth) return `path deeper than ${maxDepth} folders`;
  return undefined;
}

/**
 * The largest size a ustar header's octal field holds (8 GiB − 1). A size in a PAX header is
 * sent, and accepted, only above it: an entry with two sizes is how archives smuggle files past
 * readers that take the other one.
 */
export const USTAR_MAX_SIZE = 0o77777777777;
