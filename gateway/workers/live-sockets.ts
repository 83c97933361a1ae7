// Workers adapter of the dashboard's push channel (gateway/ui/live.ts): the coordinator holds the dashboards'
// sockets as hibernatable WebSockets (ctx.acceptWebSocket, tag "live") and pings are answered by the runtime
// (auto-response), so an open dashboard keeps no object awake; notices go out when the coordinator's store
// is written, by REST or by the shards reporting their agents through it.
import { LIVE_PATH, LIVE_PING, LIVE_PONG, LIVE_PROTOCOL, LIVE_SILENCE_MS, LiveFeed, MAX_LIVE_SOCKETS, checkLiveUpgrade, liveMessage } from '../ui/live.js';

export const LIVE_TAG = 'live';

export const isLiveUpgrade = (req: Request): boolean => new URL(req.url).pathname === LIVE_PATH && req.headers.get('upgrade')?.toLowerCase() === 'websocket';

/** The feed of this object's dashboard sockets; set up in the constructor, so it works again after hibernation. */
export function liveFeed(ctx: DurableObjectState): LiveFeed {
  ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(LIVE_PING, LIVE_PONG));
  return new LiveFeed(() => ctx.getWebSockets(LIVE_TAG).filter((ws) => ws.readyState === WebSocket.OPEN));
}

/** Authenticates the upgrade (401 before any socket exists), then accepts it for hibernation. */
export async function acceptLive(ctx: DurableObjectState, req: Request, adminToken: string): Promise<Response> {
  const verdict = await checkLiveUpgrade(req.headers.get('sec-websocket-protocol'), adminToken);
  if (verdict === 401) return Response.json({ error: 'missing or invalid admin token' }, { status: 401 });
  if (verdict === 400) return Response.json({ error: `offer the ${LIVE_PROTOCOL} subprotocol` }, { status: 400 });
  // a dashboard that went away without closing (a laptop that slept) stops pinging: it frees its place
  const now = Date.now();
  for (const ws of ctx.getWebSockets(LIVE_TAG)) {
    const heard = Math.max(ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0, (ws.deserializeAttachment() as { acceptedAt?: number } | null)?.acceptedAt ?? 0);
    if (now - heard > LIVE_SILENCE_MS) ws.close(1001, 'no ping');
  }
  if (ctx.getWebSockets(LIVE_TAG).filter((ws) => ws.readyState === WebSocket.OPEN).length >= MAX_LIVE_SOCKETS) return Response.json({ error: 'too many open dashboards' }, { status: 503 });
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  ctx.acceptWebSocket(server, [LIVE_TAG]);
  server.serializeAttachment({ acceptedAt: now });
  server.send(liveMessage('hello'));
  return new Response(null, { status: 101, webSocket: client, headers: { 'sec-websocket-protocol': LIVE_PROTOCOL } });
}

export const isLiveSocket = (ctx: DurableObjectState, ws: WebSocket): boolean => ctx.getTags(ws).includes(LIVE_TAG);
