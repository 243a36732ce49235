import type { FastifyPluginAsync } from 'fastify';
import { KhdError } from '../../protocol/errors.js';
import type { SubmitRequest } from '../../protocol/types.js';
import { requireUser } from '../app.js';
import { leaderboard } from '../submits/leaderboard.js';
import type { Services } from '../services.js';

const submitSchema = {
  body: {
    type: 'object',
    required: ['session', 'checkpoint', 'test'],
    additionalProperties: false,
    properties: {
      session: { type: 'string', maxLength: 200 },
      checkpoint: { type: 'string', minLength: 1, maxLength: 128 },
      test: { type: 'boolean' },
    },
  },
};

export function submitRoutes(services: Services): FastifyPluginAsync {
  return async (api) => {
    api.addHook('preHandler', requireUser(services));

    api.post<{ Body: SubmitRequest }>('/submits', { schema: submitSchema }, async (request, reply) =>
      reply.status(201).send(await services.submits.submit(request.user, request.body)),
    );

    api.get<{ Params: { id: string } }>('/submits/:id', async (request) => {
      const id = Number(request.params.id);
      if (!Number.isInteger(id) || id < 1) throw new KhdError('KHD_SUBMIT_NOT_FOUND', `submit ${request.params.id.slice(0, 20)} does not exist`);
      return services.submits.get(request.user, id);
    });

    api.get<{ Params: { name: string } }>('/datasets/:name/board', async (request) => {
      const dataset = services.datasets.visible(request.user, request.params.name);
      if (!dataset.leaderboard) throw new KhdError('KHD_BAD_REQUEST', `dataset ${dataset.name} keeps no leaderboard`);
      return leaderboard(services.submitStore.counted(dataset.id), dataset.order);
    });

    api.get<{ Params: { name: string } }>('/datasets/:name/submits', async (request) =>
      services.submits.history(request.user, request.params.name),
    );
  };
}
