// The fleet dashboard at /ui/: static assets compiled into the app (no files, no CDN), so the same routes
// serve it on Node and Workers. The page holds no data; it calls the admin REST API with the token the
// operator types in, plus /ui/api/events for the gateway's recent events and the push channel at
// /ui/api/live (a WebSocket: gateway/ui/live.ts; its upgrade is accepted by the runtime adapter).
import type { Context, Hono } from 'hono';
import { APP_JS } from './app-js.js';
import { CHARTS_JS } from './charts-js.js';
import { LIVE_PATH } from './live.js';
import { LIVE_JS } from './live-js.js';
import { APP_CSS, INDEX_HTML } from './page.js';

// Everything comes from this origin; no inline script or style, no framing (clickjacking on ACL forms).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const asset = (body: string, type: string) => (): Response =>
  new Response(body, { headers: { 'content-type': type, 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-cache' } });

export interface UiDeps {
  authorized(c: Context): Promise<boolean>;
  /** Newest first. */
  events(): readonly object[];
}

export function mountUi(app: Hono, deps: UiDeps): void {
  app.get('/ui', (c) => c.redirect('/ui/', 301));
  app.get('/ui/', asset(INDEX_HTML, 'text/html; charset=utf-8'));
  app.get('/ui/app.js', asset(APP_JS, 'text/javascript; charset=utf-8'));
  app.get('/ui/charts.js', asset(CHARTS_JS, 'text/javascript; charset=utf-8'));
  app.get('/ui/live.js', asset(LIVE_JS, 'text/javascript; charset=utf-8'));
  app.get('/ui/app.css', asset(APP_CSS, 'text/css; charset=utf-8'));
  app.get('/ui/api/events', async (c) => {
    if (!(await deps.authorized(c))) return c.json({ error: 'missing or invalid admin token' }, 401);
    return c.json({ events: deps.events() });
  });
  // the adapters take the WebSocket upgrades of this path before the app; a plain request gets here
  app.get(LIVE_PATH, async (c) => {
    if (!(await deps.authorized(c))) return c.json({ error: 'missing or invalid admin token' }, 401);
    return c.json({ error: 'this is a WebSocket endpoint: upgrade, offering the outpost.live.v1 subprotocol and the token as outpost.token.<base64url>' }, 426);
  });
}
