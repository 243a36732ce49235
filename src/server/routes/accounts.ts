import type { FastifyPluginAsync } from 'fastify';
import { KhdError } from '../../protocol/errors.js';
import type { AddUserRequest, LoginRequest } from '../../protocol/types.js';
import { requireUser } from '../app.js';
import { toMe } from '../store/accounts.js';
import type { Services } from '../services.js';

const loginSchema = {
  body: {
    type: 'object',
    required: ['user', 'password'],
    additionalProperties: false,
    properties: { user: { type: 'string', maxLength: 64 }, password: { type: 'string', maxLength: 1024 } },
  },
};

const addUserSchema = {
  body: {
    type: 'object',
    required: ['name', 'password'],
    additionalProperties: false,
    properties: {
      name: { type: 'string', maxLength: 64 },
      team: { type: 'string', maxLength: 64 },
      admin: { type: 'boolean' },
      password: { type: 'string', maxLength: 1024 },
    },
  },
};

export function accountRoutes(services: Services): FastifyPluginAsync {
  return async (api) => {
    api.post<{ Body: LoginRequest }>('/auth/login', { schema: loginSchema }, async (request) =>
      services.auth.login(request.body.user, request.body.password, request.ip),
    );

    api.register(async (authed) => {
      authed.addHook('preHandler', requireUser(services));
      authed.post('/auth/logout', async (request, reply) => {
        services.auth.logout(request.headers.authorization);
        return reply.status(204).send();
      });
      authed.get('/me', async (request) => toMe(request.user));
      authed.get('/users', async (request) => {
        if (!request.user.admin) throw new KhdError('KHD_FORBIDDEN', 'only an admin can list users');
        return services.accounts.listUsers().map(toMe);
      });
      authed.post<{ Body: AddUserRequest }>('/users', { schema: addUserSchema }, async (request, reply) => {
        const user = await services.auth.addUser(request.user, request.body);
        return reply.status(201).send(toMe(user));
      });
    });
  };
}
