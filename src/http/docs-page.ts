import { createHash } from 'node:crypto';

/**
 * The reference page at GET /docs, rendered on the server from the OpenAPI document and the
 * WebSocket frames' JSON Schema: one HTML file with its style inline and no script, so it works
 * offline and needs no CDN, and its CSP can forbid everything but that one style block.
 */

/** The parts of an OpenAPI document (as JSON) the page shows. */
export interface DocsPageInput {
  info: { title: string; description?: string };
  paths?: Record<string, Record<string, Operation> | undefined>;
  components?: { schemas?: Record<string, unknown> };
}
interface Operation {
  summary?: string;
  description?: string;
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: unknown }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

const STYLE = `body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:0 auto;padding:1rem 2rem;color:#1b1f24}
h2{margin-top:2.5rem;border-bottom:1px solid #d0d7de}section{margin:1.5rem 0}
code,pre{font:13px/1.4 ui-monospace,monospace}pre{background:#f6f8fa;padding:.6rem;overflow:auto;max-height:28rem}
.m{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}
.get{color:#0969da}.post{color:#1a7f37}.delete{color:#cf222e}.put,.patch{color:#9a6700}
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}
nav li{list-style:none}a{color:#0969da}`;

/** The Content-Security-Policy of the page: its own style block and nothing else. */
export const DOCS_PAGE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
/** Escaped prose with `code` spans. */
const prose = (s: string | undefined) => (s ? esc(s).replace(/`([^`]+)`/g, '<code>$1</code>') : '');
const anchor = (method: string, path: string) => `op-${method}${path.replace(/[^A-Za-z0-9]+/g, '-').replace(/-$/, '')}`;

/** A schema as JSON, its references made links to their sections. */
function schemaBlock(schema: unknown): string {
  const json = esc(JSON.stringify(schema, null, 2));
  return `<pre>${json.replace(/&#34;#\/(?:components\/schemas|\$defs)\/(\w+)&#34;/g, '<a href="#schema-$1">$1</a>')}</pre>`;
}

function operation(method: string, path: string, op: Operation): string {
  const auth = op.security?.length ? op.security.map((s) => Object.keys(s).join(', ')).join(' or ') : 'none';
  const params = op.parameters?.length
    ? `<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th></tr>${op.parameters
        .map(
          (p) =>
            `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? 'yes' : 'no'}</td><td>${schemaBlock(p.schema)}</td></tr>`,
        )
        .join('')}</table>`
    : '';
  const body = Object.entries(op.requestBody?.content ?? {})
    .map(([type, c]) => `<p>Body (${esc(type)}):</p>${schemaBlock(c.schema)}`)
    .join('');
  const responses = Object.entries(op.responses ?? {})
    .map(([status, r]) => {
      const content = Object.entries(r.content ?? {})
        .map(([type, c]) => (type === 'application/json' ? schemaBlock(c.schema) : `<p>${esc(type)}</p>`))
        .join('');
      return `<tr><td>${esc(status)}</td><td>${prose(r.description)}${content}</td></tr>`;
    })
    .join('');
  return `<section id="${anchor(method, path)}"><h3><span class="m ${method}">${method}</span> <code>${esc(path)}</code></h3>
<p><strong>${prose(op.summary)}</strong> ${prose(op.description)}</p><p>Authentication: ${esc(auth)}</p>
${params}${body}<table><tr><th>status</th><th>answer</th></tr>${responses}</table></section>`;
}

export function renderDocsPage(
  doc: DocsPageInput,
  wsFrames: { description?: string; $defs?: Record<string, unknown> },
): string {
  const ops = Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    METHODS.filter((m) => item?.[m]).map((m) => ({ method: m, path, op: item?.[m] as Operation })),
  );
  const nav = ops
    .map(
      (o) =>
        `<li><a href="#${anchor(o.method, o.path)}"><span class="m ${o.method}">${o.method}</span> <code>${esc(o.path)}</code></a> ${prose(o.op.summary)}</li>`,
    )
    .join('\n');
  const named = (defs: Record<string, unknown>) =>
    Object.entries(defs)
      .map(
        ([name, schema]) => `<section id="schema-${esc(name)}"><h3>${esc(name)}</h3>${schemaBlock(schema)}</section>`,
      )
      .join('\n');
  // The frames' definitions share names with the HTTP components (User, Message...): one section each.
  const wsOnly = Object.fromEntries(
    Object.entries(wsFrames.$defs ?? {}).filter(([name]) => !doc.components?.schemas?.[name]),
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(doc.info.title)} API</title><style>${STYLE}</style></head><body>
<h1>${esc(doc.info.title)} API</h1><p>${prose(doc.info.description)}</p>
<p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1).</p>
<h2>HTTP routes</h2><nav><ul>${nav}</ul></nav>
${ops.map((o) => operation(o.method, o.path, o.op)).join('\n')}
<h2 id="websocket">WebSocket frames</h2><p>${prose(wsFrames.description)}</p>
${named(wsOnly)}
<h2>Schemas</h2>
${named(doc.components?.schemas ?? {})}
</body></html>`;
}
