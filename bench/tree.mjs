// Generated project trees for the upload benches: text files plus a few large random binaries.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const WORDS = 'import numpy torch model train epoch loss accuracy batch layer weight bias gradient data loader'.split(' ');

function textFile(seed, size) {
  let out = `# generated file ${seed}\n`;
  let i = seed;
  while (out.length < size) {
    out += `${WORDS[i % WORDS.length]}_${i} = ${(i * 2654435761) % 1000003}\n`;
    i += 7;
  }
  return out.slice(0, size);
}

/** `textFiles` text files of about `textBytes` in all, in nested folders, and `binaries` random files. */
export function makeTree(root, { textFiles, textBytes, binaries, binaryBytes }) {
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'main.py'), 'print("bench")\n');
  const each = Math.max(1, Math.floor(textBytes / textFiles));
  for (let i = 0; i < textFiles; i++) {
    const dir = join(root, 'src', `pkg${i % 50}`, `mod${i % 7}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `file${i}.py`), textFile(i, each + (i % 13) * 17));
  }
  mkdirSync(join(root, 'weights'), { recursive: true });
  for (let i = 0; i < binaries; i++) {
    const file = join(root, 'weights', `part${i}.bin`);
    writeFileSync(file, '');
    for (let done = 0; done < binaryBytes; done += 16 * 1024 * 1024) {
      writeFileSync(file, randomBytes(Math.min(16 * 1024 * 1024, binaryBytes - done)), { flag: 'a' });
    }
  }
}
