import type { Hono } from 'hono';
import type { Schemas } from '../../domain/schemas.js';
import { wsFramesJsonSchema } from '../../domain/ws-frames-json-schema.js';
import { DOCS_PAGE_CSP, renderDocsPage } from '../docs-page.js';
import { createOpenApiDocument } from '../openapi/document.js';

/**
 * GET /api/openapi.json and GET /docs, without authentication: the contract as OpenAPI 3.1 and
 * as a page. Mounted on the root app ahead of /api, whose middleware would ask for a token. Both
 * are generated once, on first request, from this process's schemas (so its own limits).
 */
export function docsRoutes(deps: { schemas: Schemas }) {
  let json: string | undefined;
  let page: string | undefined;
  const document = () => (json ??= JSON.stringify(createOpenApiDocument(deps.schemas)));
  return (app: Hono): void => {
    app.get('/api/openapi.json', (c) => c.body(document(), 200, { 'content-type': 'application/json; charset=utf-8' }));
    app.get('/docs', (c) => {
      // The page shows the document exactly as served.
      page ??= renderDocsPage(JSON.parse(document()), wsFramesJsonSchema(deps.schemas.frame));
      return c.html(page, 200, { 'content-security-policy': DOCS_PAGE_CSP });
    });
  };
}
