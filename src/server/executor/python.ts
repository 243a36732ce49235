import { execFileSync } from 'node:child_process';

export interface PythonInfo {
  /** The real interpreter (not a pyenv or asdf shim), so it can be called by path in a sandbox. */
  executable: string;
  /** Folders the interpreter and its packages live in (sys.prefix, sys.base_prefix). */
  prefixes: string[];
  version: string;
}

const PROBE = 'import json, sys; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix, sys.version.split()[0]]))';

/** Asks the interpreter where it really lives; `python3` on PATH by default. */
export function resolvePython(command = 'python3'): PythonInfo {
  let out: string;
  try {
    out = execFileSync(command, ['-c', PROBE], { encoding: 'utf8', timeout: 30_000 });
  } catch (err) {
    throw new Error(`cannot run Python '${command}' (${(err as Error).message.split('\n')[0]}): install Python 3 or pass --python PATH`);
  }
  const [executable, prefix, basePrefix, version] = JSON.parse(out) as string[];
  return { executable: executable!, prefixes: [...new Set([prefix!, basePrefix!])], version: version! };
}
