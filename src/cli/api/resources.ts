import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { sessionPath, type SessionName } from '../../protocol/session-name.js';
import type {
  DatasetChange, DatasetChangeRecord, DatasetFile, ForkRequest, MetricsPage,
  AddEnvironmentRequest, AddUserRequest, BoardRow, EnvironmentDetails, EnvironmentInfo, CheckpointInfo, CreateUploadRequest, HashFirst, SubmitInfo, SubmitRequest, DatasetInfo, LoginResponse, Me, PushDatasetRequest, PushDatasetResponse, RunRequest,
  ServerInfo, SessionInfo, UploadInfo,
} from '../../protocol/types.js';
import type { ApiClient } from './client.js';


/** One function per API call: the only place that knows routes and verbs. */
export function resources(api: ApiClient) {
  return {
    info: () => api.request<ServerInfo>({ method: 'GET', url: '/info' }),
    login: (user: string, password: string) =>
      api.request<LoginResponse>({ method: 'POST', url: '/auth/login', data: { user, password } }),
    logout: () => api.request<void>({ method: 'POST', url: '/auth/logout', data: {} }),
    me: () => api.request<Me>({ method: 'GET', url: '/me' }),
    addUser: (req: AddUserRequest) => api.request<Me>({ method: 'POST', url: '/users', data: req }),
    users: () => api.request<Me[]>({ method: 'GET', url: '/users' }),

    environments: () => api.request<EnvironmentInfo[]>({ method: 'GET', url: '/environments' }),
    environmentDetails: () => api.request<EnvironmentDetails>({ method: 'GET', url: '/environments/details' }),
    addEnvironment: (req: AddEnvironmentRequest) => api.request<EnvironmentInfo>({ method: 'POST', url: '/environments', data: req }),
    removeEnvironment: (name: string) => api.request<void>({ method: 'DELETE', url: `/environments/${encodeURIComponent(name)}` }),

    datasets: () => api.request<DatasetInfo[]>({ method: 'GET', url: '/datasets' }),
    pushDataset: (req: PushDatasetRequest) => api.request<PushDatasetResponse>({ method: 'POST', url: '/datasets', data: req }),

    // A manifest is mostly paths and hashes: gzip halves it (it is most of a small change's bytes).
    // The upload, or (entries sent without a hash that may be on the server) which to hash first.
    createUpload: (req: CreateUploadRequest) =>
      api.request<UploadInfo | HashFirst>({
        method: 'POST',
        url: '/uploads',
        data: gzipSync(JSON.stringify(req), { level: 1 }),
        headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
      }),
    reuseUpload: (tree: string) => api.request<UploadInfo>({ method: 'POST', url: '/uploads/reuse', data: { purpose: 'session', tree } }),
    sendUpload: (id: string, body: Readable, contentType: string, signal?: AbortSignal) =>
      api.request<UploadInfo>({
        method: 'PUT',
        url: `/uploads/${id}`,
        data: body,
        headers: { 'Content-Type': contentType },
        // A large upload takes as long as it takes; the socket's own errors still end it.
        timeout: 0,
        signal,
      }),
    cancelUpload: (id: string) => api.request<void>({ method: 'DELETE', url: `/uploads/${id}` }),

    run: (req: RunRequest) => api.request<SessionInfo>({ method: 'POST', url: '/sessions', data: req }),
    sessions: (query: { all?: boolean; limit?: number; dataset?: string; search?: string; mine?: boolean }) =>
      api.request<SessionInfo[]>({
        method: 'GET',
        url: '/sessions',
        params: { all: query.all ? '1' : undefined, limit: query.limit, dataset: query.dataset, search: query.search || undefined, mine: query.mine ? '1' : undefined },
      }),
    session: (name: SessionName) => api.request<SessionInfo>({ method: 'GET', url: sessionPath(name) }),
    stop: (name: SessionName) => api.request<SessionInfo>({ method: 'POST', url: `${sessionPath(name)}/stop`, data: {} }),
    fork: (name: SessionName, req: ForkRequest) => api.request<SessionInfo>({ method: 'POST', url: `${sessionPath(name)}/fork`, data: req }),
    memo: (name: SessionName, memo: string) =>
      api.request<SessionInfo>({ method: 'PATCH', url: sessionPath(name), data: { memo } }),
    gpustat: (name: SessionName) => api.request<{ text: string }>({ method: 'GET', url: `${sessionPath(name)}/gpustat` }),
    metrics: (name: SessionName, offset: number) => api.request<MetricsPage>({ method: 'GET', url: `${sessionPath(name)}/metrics`, params: { offset } }),
    models: (name: SessionName) => api.request<CheckpointInfo[]>({ method: 'GET', url: `${sessionPath(name)}/models` }),
    removeModel: (name: SessionName, checkpoint: string) =>
      api.request<void>({ method: 'DELETE', url: `${sessionPath(name)}/models/${encodeURIComponent(checkpoint)}` }),

    submit: (req: SubmitRequest) => api.request<SubmitInfo>({ method: 'POST', url: '/submits', data: req }),
    getSubmit: (id: number) => api.request<SubmitInfo>({ method: 'GET', url: `/submits/${id}` }),
    changeDataset: (name: string, change: DatasetChange) =>
      api.request<{ dataset: DatasetInfo; changes: DatasetChangeRecord[] }>({ method: 'PATCH', url: `/datasets/${encodeURIComponent(name)}`, data: change }),
    removeDataset: (name: string) => api.request<void>({ method: 'DELETE', url: `/datasets/${encodeURIComponent(name)}` }),
    datasetChanges: (name: string) => api.request<DatasetChangeRecord[]>({ method: 'GET', url: `/datasets/${encodeURIComponent(name)}/changes` }),
    datasetFiles: (name: string) => api.request<DatasetFile[]>({ method: 'GET', url: `/datasets/${encodeURIComponent(name)}/files` }),
    board: (dataset: string) => api.request<BoardRow[]>({ method: 'GET', url: `/datasets/${encodeURIComponent(dataset)}/board` }),
    submits: (dataset: string) =>
      api.request<SubmitInfo[]>({ method: 'GET', url: `/datasets/${encodeURIComponent(dataset)}/submits` }),

    remove: (name: SessionName, force: boolean) =>
      api.request<void>({ method: 'DELETE', url: sessionPath(name), params: { force: force ? '1' : undefined } }),
  };
}

export type Resources = ReturnType<typeof resources>;
