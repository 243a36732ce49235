import { formatSize } from '../../../protocol/sizes.js';
import type { EnvironmentInfo } from '../../../protocol/types.js';
import type { Context } from '../../context.js';
import { renderTable } from '../../render/table.js';
import type { EnvAddOptions } from './env.js';

const packagesOf = (e: EnvironmentInfo) => Object.entries(e.packages).map(([n, v]) => `${n} ${v}`).join(', ');

export async function runEnvAdd(name: string, opts: EnvAddOptions, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const env = await api.calls.addEnvironment({ name, python: opts.python, aliases: opts.alias, default: opts.default, description: opts.message });
  ctx.io.err(
    `✓ Added environment ${env.name}: Python ${env.version ?? '?'}${env.packages && Object.keys(env.packages).length ? `, ${packagesOf(env)}` : ''}` +
      `${env.gpus ? ', sees GPUs' : ''}${env.aliases.length ? `; chosen by #nsml: ${env.aliases.join(', ')}` : ''}${env.default ? '; the default' : ''}\n`,
  );
}

export async function runEnvLs(opts: { json?: boolean; layers?: boolean }, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const [envs, details] = await Promise.all([api.calls.environments(), opts.layers ? api.calls.environmentDetails() : undefined]);
  if (opts.json) return ctx.io.out(`${JSON.stringify(details ? { environments: envs, ...details } : envs, null, 2)}\n`);
  ctx.io.out(
    renderTable(
      ['Name', 'Aliases', 'Python', 'Packages', 'GPUs', 'Description'],
      envs.map((e) => [e.name + (e.default ? ' (default)' : ''), e.aliases.join(', '), e.version ?? '?', packagesOf(e), e.gpus ? 'yes' : 'no', e.description]),
    ),
  );
  if (!details) return;
  ctx.io.out('\nPackage layers\n');
  ctx.io.out(
    details.layers.length === 0
      ? '  none yet\n'
      : renderTable(['Environment', 'Requirements', 'Size', 'Last Used'], details.layers.map((l) => [l.environment, l.requirements.join(' '), formatSize(l.size), l.lastUsed])),
  );
  ctx.io.out('\nSystem packages asked for (nsml_package.txt) that this server lacks\n');
  ctx.io.out(
    details.missingSystemPackages.length === 0
      ? '  none\n'
      : renderTable(['Package', 'Sessions', 'Last Asked'], details.missingSystemPackages.map((m) => [m.name, m.sessions, m.lastAskedAt])),
  );
}

export async function runEnvRm(name: string, ctx: Context): Promise<void> {
  const api = await ctx.api();
  await api.calls.removeEnvironment(name);
  ctx.io.err(`✓ Removed environment ${name}\n`);
}
