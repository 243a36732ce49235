// `npm run build` (after tsup): bundles the dashboard (src/web) for the browser into dist/web,
// names the bundles by their content hash so they can be cached for good, writes index.html
// pointing at them, and compresses each text file (brotli and gzip) once, here, not per request.
import { build } from 'esbuild';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const out = 'dist/web';
rmSync(out, { recursive: true, force: true });

const result = await build({
  entryPoints: ['src/web/main.ts'],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  outdir: out,
  entryNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});

const [js, meta] = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint === 'src/web/main.ts');
const html = readFileSync('src/web/index.html', 'utf8').replace('%JS%', `/${basename(js)}`).replace('%CSS%', `/${basename(meta.cssBundle)}`);
writeFileSync(join(out, 'index.html'), html);

for (const name of readdirSync(out)) {
  if (!/\.(js|css|html)$/.test(name)) continue;
  const data = readFileSync(join(out, name));
  writeFileSync(join(out, `${name}.br`), brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
  writeFileSync(join(out, `${name}.gz`), gzipSync(data, { level: 9 }));
}
