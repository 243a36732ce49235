import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Header, Pax } from 'tar';
import type { EntryTypeName } from 'tar/types';
import type { ManifestEntry } from '../../src/protocol/types.js';

export interface CraftedEntry {
  path: string;
  type?: EntryTypeName;
  body?: string;
  mode?: number;
  linkpath?: string;
  /** Size written in the header, when it should lie about the body. */
  size?: number;
  /** A size in a PAX header before the entry (which readers take over the ustar one). */
  paxSize?: number;
}

/**
 * A tar built byte by byte, so tests can write what no honest packer would: links, devices,
 * absolute and `..` paths, sizes that lie, PAX headers. Returns the raw tar; gzip it with `gz`.
 */
export function craftTar(entries: CraftedEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const header = new Header({
      path: e.path,
      type: e.type ?? 'File',
      mode: e.mode ?? 0o644,
      size: e.size ?? (e.type && e.type !== 'File' ? 0 : body.length),
      linkpath: e.linkpath,
      mtime: new Date(0),
      uid: 0,
      gid: 0,
    });
    const block = Buffer.alloc(512);
    // A path too long for ustar, or a PAX size, goes in a PAX header before the entry.
    const needPax = header.encode(block, 0);
    if (needPax || e.paxSize !== undefined) {
      blocks.push(new Pax({ path: needPax ? e.path : undefined, size: e.paxSize }).encode());
    }
    blocks.push(block);
    if (body.length > 0) {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export const gz = (raw: Buffer): Buffer => gzipSync(raw);

export function manifestOf(files: Record<string, string>): ManifestEntry[] {
  return Object.entries(files).map(([path, body]) => ({
    path,
    size: Buffer.byteLength(body),
    mode: 0o644,
    sha256: createHash('sha256').update(body).digest('hex'),
  }));
}
