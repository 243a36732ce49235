import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

// One entry; every command's heavy work is a dynamic import, so it lands in its own chunk and
// `khd --version` loads only commander and the command definitions.
export default defineConfig({
  entry: { cli: 'src/cli/main.ts' },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  splitting: true,
  sourcemap: true,
  clean: true,
  define: { __KHD_VERSION__: JSON.stringify(version) },
  // Bundled: resolving and loading CommonJS files (commander; bytes and ms, which every command's
  // option parsers load) costs more than parsing them inline.
  noExternal: ['commander', 'bytes', 'ms'],
  // Bundled CommonJS calls require() for Node's built-ins; give the ESM chunks one.
  banner: { js: "import { createRequire as __khdCreateRequire } from 'node:module'; const require = __khdCreateRequire(import.meta.url);" },
});
