// The sizes the benches run at: `full` for docs/performance.md, `small` for the CI smoke test.
const MB = 1024 * 1024;
export const SCALES = {
  full: {
    runs: 30,
    uploadPairs: 5,
    pageRuns: 7,
    diskLimitMb: 2048,
    tree: { textFiles: 4990, textBytes: 50 * MB, binaries: 10, binaryBytes: 15 * MB },
    // 1.0 GB (decimal): just under the default 1 GiB session limit.
    bigTree: { textFiles: 10, textBytes: MB, binaries: 8, binaryBytes: 119 * MB },
    followers: 100,
    lineRate: 1000,
    fanOutSeconds: 10,
    logLines: 1_000_000,
  },
  small: {
    runs: 3,
    uploadPairs: 2,
    pageRuns: 1,
    diskLimitMb: 128,
    tree: { textFiles: 200, textBytes: 2 * MB, binaries: 2, binaryBytes: 2 * MB },
    bigTree: { textFiles: 10, textBytes: MB, binaries: 2, binaryBytes: 8 * MB },
    followers: 5,
    lineRate: 200,
    fanOutSeconds: 1,
    logLines: 5000,
  },
};

