import type { FastifyPluginAsync } from 'fastify';
import type { DatasetChange, PushDatasetRequest } from '../../protocol/types.js';
import { requireUser } from '../app.js';
import type { DatasetRow } from '../store/datasets.js';
import type { Services } from '../services.js';

const pushSchema = {
  body: {
    type: 'object',
    required: ['name', 'upload'],
    additionalProperties: false,
    properties: {
      name: { type: 'string', maxLength: 64 },
      upload: { type: 'string', maxLength: 64 },
      leaderboard: { type: 'boolean' },
      metric: { enum: ['accuracy', 'macro_f1', 'mse', 'custom'] },
      order: { enum: ['desc', 'asc'] },
      modelSizeLimit: { type: 'integer', minimum: 1 },
      submitIntervalMs: { type: 'integer', minimum: 0 },
      private: { type: 'boolean' },
      description: { type: 'string', maxLength: 4096 },
      pausedTimeoutMs: { type: 'integer', minimum: 1 },
      inferTimeoutMs: { type: 'integer', minimum: 1 },
      modelPull: { type: 'boolean' },
      submitFrom: { type: ['string', 'null'], format: 'date-time' },
      submitUntil: { type: ['string', 'null'], format: 'date-time' },
      labels: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 1024 } },
      visible: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 1024 } },
    },
  },
};

const publicView = ({ id: _id, ...info }: DatasetRow) => info;

const changeSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: {
      description: { type: 'string', maxLength: 4096 },
      metric: { enum: ['accuracy', 'macro_f1', 'mse', 'custom'] },
      order: { enum: ['desc', 'asc'] },
      modelSizeLimit: { type: 'integer', minimum: 1 },
      submitIntervalMs: { type: 'integer', minimum: 0 },
      pausedTimeoutMs: { type: 'integer', minimum: 1 },
      inferTimeoutMs: { type: 'integer', minimum: 1 },
      submitFrom: { type: ['string', 'null'], format: 'date-time' },
      submitUntil: { type: ['string', 'null'], format: 'date-time' },
      private: { type: 'boolean' },
      modelPull: { type: 'boolean' },
    },
  },
};

export function datasetRoutes(services: Services): FastifyPluginAsync {
  return async (api) => {
    api.addHook('preHandler', requireUser(services));
    api.get('/datasets', async (request) => services.datasets.list(request.user).map(publicView));
    api.post<{ Body: PushDatasetRequest }>('/datasets', { schema: pushSchema }, async (request, reply) => {
      const { row, layout } = await services.datasets.push(request.user, request.body);
      return reply.status(201).send({ ...publicView(row), layout });
    });
    api.patch<{ Params: { name: string }; Body: DatasetChange }>('/datasets/:name', { schema: changeSchema }, async (request) => {
      const { row, made } = services.datasets.change(request.user, request.params.name, request.body);
      return { dataset: publicView(row), changes: made };
    });
    api.delete<{ Params: { name: string } }>('/datasets/:name', async (request, reply) => {
      await services.datasets.remove(request.user, request.params.name);
      return reply.code(204).send();
    });
    api.get<{ Params: { name: string } }>('/datasets/:name/changes', async (request) => services.datasets.changes(request.user, request.params.name));
    api.get<{ Params: { name: string } }>('/datasets/:name/files', async (request) => services.datasets.files(request.user, request.params.name));
  };
}
