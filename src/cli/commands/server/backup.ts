import { formatSize } from '../../../protocol/sizes.js';
import type { Context } from '../../context.js';
import { CliError } from '../../errors.js';

/** `khd server backup DEST`: a copy to start a server from (`khd server --data-dir DEST`). */
export async function runBackup(dest: string, dataDir: string, ctx: Context): Promise<void> {
  const { backupDataDir } = await import('../../../server/backup.js');
  let summary;
  try {
    summary = await backupDataDir(dataDir, dest);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  for (const path of summary.leftOut.slice(0, 20)) ctx.io.err(`note: ${path} left out (a link or special file a session made)\n`);
  if (summary.leftOut.length > 20) ctx.io.err(`note: ${summary.leftOut.length - 20} more left out\n`);
  ctx.io.err(
    `✓ Backed up ${dataDir} to ${summary.dest}: ${summary.sessions} sessions, ${summary.submits} submits, ${summary.datasets} datasets, ${formatSize(summary.bytes)}\n` +
      `  restore: khd server --data-dir ${summary.dest}\n`,
  );
}
