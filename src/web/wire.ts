// The wire types and the formatting the CLI uses, shared with the dashboard so both say the same.
export { API_PREFIX, isFinished } from '../protocol/types.js';
export type {
  BoardRow,
  CheckpointInfo,
  DatasetInfo,
  LoginResponse,
  LogEnd,
  LogRecord,
  Me,
  MetricPoint,
  MetricsPage,
  SessionInfo,
  SessionStatus,
  SubmitInfo,
} from '../protocol/types.js';
export type { ErrorBody } from '../protocol/errors.js';
export { formatDuration, formatSize } from '../protocol/sizes.js';
export { LogFollower, reconnectDelay } from '../protocol/log-follow.js';
export { sessionPath } from '../protocol/session-name.js';
export { boardHeader, boardModel, formatScore, metricName, statusText, summaryText, timeAgo, typeText } from '../protocol/format.js';
