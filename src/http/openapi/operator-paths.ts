import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { errorBodySchema } from '../../domain/response-schemas.js';
import { broadcastBody, idSchema } from '../../domain/schemas.js';
import type { Readiness } from '../../infra/readiness.js';
import type { ChatLag, LagSummary } from '../../metrics/persistence-lag.js';
import type { EndpointStatus } from '../../webhooks/stats.js';
import { BULL_BOARD_PATH } from '../routes/bull-board.js';
import { asAdmin, bodyErrors, errors, json, noAuth } from './responses.js';

const readinessSchema = z.object({
  redis: z.boolean(),
  postgres: z.boolean(),
  mode: z.enum(['normal', 'degraded']).meta({ description: '`degraded`: serving on PostgreSQL alone' }),
}) satisfies z.ZodType<Readiness>;

const chatLagSchema = z
  .object({
    chatId: z.string(),
    newestAckedSeq: z.number().int().nullable(),
    newestPersistedSeq: z.number().int(),
    lagSeqs: z.number().int(),
    pending: z.number().int(),
    oldestUnpersistedAgeS: z.number(),
  })
  .meta({ id: 'ChatLag', description: 'how far PostgreSQL is behind Redis for one chat' }) satisfies z.ZodType<ChatLag>;

const endpointStatusSchema = z
  .object({
    id: z.string().meta({ description: "the first 16 hex digits of the URL's SHA-256" }),
    url: z.string().meta({ description: 'without user info, query or fragment' }),
    queue: z.string().meta({ description: 'its BullMQ queue (Bull Board)' }),
    delivered: z.number().int().meta({ description: 'events it acknowledged with a 2xx' }),
    failed: z.number().int().meta({ description: 'events given up on after every attempt (the dead-letter set)' }),
    failedAttempts: z.number().int().meta({ description: 'failed deliveries of an event, retried or not' }),
    pending: z.number().int().meta({
      description: 'events waiting for a first or next attempt (a lower bound when pendingExact is false)',
    }),
    pendingExact: z
      .boolean()
      .meta({ description: 'false when there were too many pending jobs to read them all for `pending`' }),
    pendingJobs: z.number().int().meta({
      description: 'delivery jobs waiting, delayed or active (each a run of up to WEBHOOK_JOB_MAX_EVENTS events)',
    }),
    lastError: z.string().nullable(),
    lastErrorAt: z.iso.datetime().nullable(),
  })
  .meta({
    id: 'WebhookEndpoint',
    description: "one webhook receiver's deliveries",
  }) satisfies z.ZodType<EndpointStatus>;

const lagSummarySchema = z.object({
  sampledAt: z.iso.datetime(),
  laggingChats: z.number().int(),
  pendingMessages: z.number().int(),
  lagSeqs: z.number().int(),
  maxLagSeqs: z.number().int(),
  oldestUnpersistedAgeS: z.number(),
  worst: z.array(chatLagSchema),
  truncated: z.boolean(),
}) satisfies z.ZodType<LagSummary>;

const adminErrors = {
  unauthorized: 'no admin token, or a wrong one',
  forbidden: 'no ADMIN_TOKEN is configured',
} as const;

/**
 * The routes outside the user API: health, metrics, the admin routes (src/features/operator.ts,
 * system-events.ts), these documents, and the WebSocket upgrade (the gateway, not Hono, answers it).
 */
export function registerOperatorPaths(registry: OpenAPIRegistry): void {
  const path = (config: Parameters<OpenAPIRegistry['registerPath']>[0]) =>
    registry.registerPath({ security: noAuth, tags: ['operations'], ...config });

  path({
    method: 'get',
    path: '/healthz',
    summary: 'Liveness',
    responses: { 200: json('The process serves', z.object({ ok: z.literal(true) })) },
  });
  path({
    method: 'get',
    path: '/readyz',
    summary: 'Readiness',
    responses: {
      200: json('At least one store is reachable', readinessSchema),
      503: json('Neither Redis nor PostgreSQL is reachable', readinessSchema),
    },
  });
  path({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } } },
  });
  path({
    method: 'get',
    path: '/admin/persistence-lag',
    summary: 'Redis → PostgreSQL lag, overall',
    security: asAdmin,
    responses: { 200: json('The lag summary', lagSummarySchema), ...errors(adminErrors) },
  });
  path({
    method: 'get',
    path: '/admin/persistence-lag/{chatId}',
    summary: 'Redis → PostgreSQL lag of one chat',
    security: asAdmin,
    request: { params: z.object({ chatId: idSchema }) },
    responses: {
      200: json("The chat's lag", chatLagSchema),
      ...errors({ ...adminErrors, validation_failed: 'chatId is not a UUID' }),
    },
  });
  path({
    method: 'get',
    path: '/admin/webhooks',
    summary: 'Webhook receivers and their deliveries',
    description:
      'Per receiver (WEBHOOK_URLS): events delivered, failed (dead-lettered) and pending, and the last error.',
    security: asAdmin,
    responses: {
      200: json('The receivers', z.object({ endpoints: z.array(endpointStatusSchema) })),
      ...errors(adminErrors),
    },
  });
  path({
    method: 'post',
    path: '/api/admin/broadcast',
    summary: 'Send a system event to every client',
    description: 'A `system` frame `{event, data}` to every connected client on every api process.',
    security: asAdmin,
    request: { body: { required: true, content: { 'application/json': { schema: broadcastBody } } } },
    responses: {
      202: json(
        'Published',
        z.object({
          event: z.string(),
          processes: z.number().int().meta({ description: 'api processes that received it' }),
        }),
      ),
      ...errors({ ...adminErrors, ...bodyErrors, unavailable: 'Redis is down' }),
    },
  });
  path({
    method: 'get',
    path: BULL_BOARD_PATH,
    summary: 'Bull Board',
    description: `The queues' web UI, mounted only when BULL_BOARD_PASSWORD is set. Its pages and its own API under ${BULL_BOARD_PATH}/ are Bull Board's, not part of this contract.`,
    security: [{ bullBoard: [] }],
    responses: {
      200: { description: 'The board', content: { 'text/html': { schema: z.string() } } },
      ...errors({ unauthorized: 'no or wrong basic-auth credentials' }),
    },
  });
  path({
    method: 'get',
    path: '/api/openapi.json',
    summary: 'This document',
    responses: {
      200: {
        description: 'OpenAPI 3.1',
        content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
      },
    },
  });
  path({
    method: 'get',
    path: '/docs',
    summary: 'This document as a page',
    description: 'The HTTP routes and the WebSocket frames, readable in a browser, with nothing loaded from elsewhere.',
    responses: { 200: { description: 'HTML', content: { 'text/html': { schema: z.string() } } } },
  });
  path({
    method: 'get',
    path: '/',
    summary: 'The web chat app',
    description:
      'Its page (built into dist/web by `npm run build`, on the client SDK); 404 with WEB_APP=false, 503 when the build is missing.',
    responses: {
      200: { description: 'HTML', content: { 'text/html': { schema: z.string() } } },
      404: { description: 'WEB_APP=false' },
      503: { description: 'not built: run `npm run build`' },
    },
  });
  path({
    method: 'get',
    path: '/app/{name}',
    summary: "The web app's assets",
    description: 'Its script and stylesheet, named by their content (cached for good); 404 for any other name.',
    request: { params: z.object({ name: z.string() }) },
    responses: {
      200: { description: 'JavaScript or CSS' },
      404: { description: 'no such asset (or WEB_APP=false)' },
    },
  });
  path({
    method: 'get',
    path: '/ws',
    tags: ['websocket'],
    summary: 'WebSocket',
    description:
      'Upgrade with the token (a session token or a JWT) in `?token=` or as the subprotocol `bearer.<token>`; a socket opened with it closes with 4001 when it expires. The server then sends `ready` and the events of your chats. Frames both ways: docs/ws-frames.schema.json (and /docs).',
    request: {
      query: z.object({
        token: z.string().optional().meta({ description: 'a session token or a JWT (or use the subprotocol)' }),
      }),
    },
    responses: {
      101: { description: 'Switching protocols' },
      // Refused before the upgrade, in the error shape but without Retry-After.
      401: json('`unauthorized`: a bad or missing token', errorBodySchema),
      429: json('`rate_limited`: the user has WS_MAX_CONNECTIONS_PER_USER connections already', errorBodySchema),
      503: json('`unavailable`: this server holds WS_MAX_CONNECTIONS, or a dependency is down', errorBodySchema),
    },
  });
}
