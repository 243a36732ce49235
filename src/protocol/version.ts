// Replaced at build time by tsup's `define`; the fallback serves vitest, which runs sources.
declare const __KHD_VERSION__: string | undefined;
export const VERSION: string = typeof __KHD_VERSION__ === 'string' ? __KHD_VERSION__ : '0.0.0-dev';
