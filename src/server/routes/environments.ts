import type { FastifyPluginAsync } from 'fastify';
import type { AddEnvironmentRequest } from '../../protocol/types.js';
import { requireUser } from '../app.js';
import type { Services } from '../services.js';

const addSchema = {
  body: {
    type: 'object',
    required: ['name', 'python'],
    additionalProperties: false,
    properties: {
      name: { type: 'string', maxLength: 64 },
      python: { type: 'string', minLength: 1, maxLength: 4096 },
      aliases: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 256 } },
      default: { type: 'boolean' },
      description: { type: 'string', maxLength: 4096 },
    },
  },
};

/** Environments: everyone lists them (as NSML's image list); admins add, remove, and see the layers. */
export function environmentRoutes(services: Services): FastifyPluginAsync {
  return async (api) => {
    api.addHook('preHandler', requireUser(services));
    api.get('/environments', async () => services.environments.list());
    api.get('/environments/details', async (request) => services.environments.details(request.user));
    api.post<{ Body: AddEnvironmentRequest }>('/environments', { schema: addSchema }, async (request, reply) =>
      reply.status(201).send(await services.environments.add(request.user, request.body)),
    );
    api.delete<{ Params: { name: string } }>('/environments/:name', async (request, reply) => {
      services.environments.remove(request.user, request.params.name);
      return reply.status(204).send();
    });
  };
}
