import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import type { Schemas } from '../../domain/schemas.js';
import { registerAccountPaths } from './account-paths.js';
import { registerChatPaths } from './chat-paths.js';
import { registerOperatorPaths } from './operator-paths.js';

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

/**
 * The OpenAPI 3.1 document of every HTTP route, generated from the zod schemas that validate the
 * requests (`schemas`, built from this process's limits, so maxLength and the like are the ones
 * it enforces) and those of the answers (domain/response-schemas.ts). The routes themselves do not
 * use the registry: they keep their own parsing and error handling. A test compares the paths
 * registered here with the routes Hono holds, so a route added without its entry fails it.
 */
export function createOpenApiDocument(schemas: Schemas): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description:
      'A token from POST /api/sessions, or a JWT from your identity provider when JWT_SECRET (HS256) or JWT_JWKS_URL (RS256/ES256) is set: its `sub` is the user id, the user created on first use (docs/protocol.md "External identity")',
  });
  registry.registerComponent('securitySchemes', 'adminToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'The operator token, ADMIN_TOKEN',
  });
  registry.registerComponent('securitySchemes', 'bullBoard', {
    type: 'http',
    scheme: 'basic',
    description: 'BULL_BOARD_USER and BULL_BOARD_PASSWORD',
  });
  registerAccountPaths(registry, schemas);
  registerChatPaths(registry, schemas);
  registerOperatorPaths(registry);

  return new OpenApiGeneratorV31(registry.definitions, { sortComponents: 'alphabetically' }).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Parley',
      version: '1',
      description:
        'Real-time chat: this HTTP API and a WebSocket at /ws. Bodies are JSON (UTF-8), ids opaque strings, times ISO-8601 UTC. Every error is `{"error": {"code", "message"}}` with a fitting status.',
    },
    tags: [
      { name: 'accounts', description: 'Registration, login and logout' },
      { name: 'chats', description: 'Chats, members, messages and read positions' },
      { name: 'presence' },
      { name: 'operations', description: 'Health, metrics, admin and these documents' },
      { name: 'websocket' },
    ],
  });
}
