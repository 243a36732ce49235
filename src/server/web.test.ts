import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { webRoutes } from './web.js';

describe('webRoutes', () => {
  it('says how to build the dashboard when it is not built, instead of a bare 404', async () => {
    const app = Fastify();
    await app.register(webRoutes(undefined));
    const r = await app.inject({ url: '/' });
    expect(r.statusCode).toBe(200);
    expect(r.body).toBe('The khd dashboard is not built: run npm run build, then restart the server.\n');
    await app.close();
  });
});
