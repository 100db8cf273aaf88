/**
 * The admin listener (`admin.listen`, loopback by default; HTTP/1.1, node:http):
 * GET /metrics (Prometheus text), /healthz (200 or 503 with the reasons), /api/status
 * (the status snapshot as JSON) and / with /status.css and /status.js (the status
 * page). Only GET and HEAD; no request body is read; strict security headers.
 *
 * DNS rebinding (a web page whose name is made to resolve to this listener) is
 * refused by the Host header: only an IP literal, `localhost` or a name listed in
 * `admin.allowed_hosts` is answered; any other name gets 421 (RFC 9110 15.5.20).
 *
 * In a fleet with `state.admin_token_file`, GET /quarantine/ID (the record) and
 * /quarantine/ID/original (the bytes) serve this node's quarantine to the other
 * nodes, only with the fleet's bearer token (RFC 6750; 401 without it).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import type { HostPort } from '../config/schema.js';
import type { Metrics } from './metrics.js';
import { STATUS_CSS, STATUS_HTML, STATUS_JS } from './status-page.js';
import type { QuarantineStore } from '../quarantine/store.js';
import { bearerMatches } from '../state/admin-token.js';

/** A request that has not been answered within this long is dropped. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface Health {
  ok: boolean;
  detail: Record<string, unknown>;
}

export interface AdminServer {
  address: AddressInfo;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

/** Whether a Host header names this listener by an IP literal, localhost or an allowed name (no header: HTTP/1.0, not a browser). */
export function hostAllowed(host: string | undefined, allowedHosts: readonly string[]): boolean {
  if (host === undefined) return true;
  const name = (/^\[([^\]]+)\](?::\d+)?$/.exec(host)?.[1] ?? host.replace(/:\d+$/, '')).replace(/\.$/, '').toLowerCase();
  return isIP(name) !== 0 || name === 'localhost' || allowedHosts.some((allowed) => allowed.toLowerCase().replace(/\.$/, '') === name);
}

/** This node's quarantine, served to the fleet with its token. */
export interface SharedQuarantine {
  store: QuarantineStore;
  token: string;
}

export async function startAdminServer(listen: HostPort, metrics: Metrics, health: () => Promise<Health>, allowedHosts: readonly string[] = [], quarantine?: SharedQuarantine): Promise<AdminServer> {
  const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (request, response) => {
    if (!hostAllowed(request.headers.host, allowedHosts)) return send(response, 421, 'text/plain; charset=utf-8', 'this host name is not served here (admin.allowed_hosts)\n');
    answer(request, response, metrics, health, quarantine).catch((error: unknown) => {
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', `internal error: ${(error as Error).message}\n`);
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => undefined);
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(request: IncomingMessage, response: ServerResponse, metrics: Metrics, health: () => Promise<Health>, quarantine: SharedQuarantine | undefined): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    return send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  }
  const path = new URL(request.url ?? '/', 'http://admin').pathname;
  const entry = /^\/quarantine\/([^/]+)(\/original)?$/.exec(path);
  if (entry !== null && quarantine !== undefined) return serveQuarantine(request, response, quarantine, decodeURIComponent(entry[1] ?? ''), entry[2] !== undefined);
  switch (path) {
    case '/metrics':
      return send(response, 200, metrics.registry.contentType, await metrics.registry.metrics());
    case '/healthz': {
      const state = await health();
      return send(response, state.ok ? 200 : 503, 'application/json', `${JSON.stringify({ ok: state.ok, ...state.detail })}\n`);
    }
    case '/api/status':
      return send(response, 200, 'application/json', JSON.stringify(await metrics.currentSnapshot()));
    case '/':
      return send(response, 200, 'text/html; charset=utf-8', STATUS_HTML);
    case '/status.css':
      return send(response, 200, 'text/css; charset=utf-8', STATUS_CSS);
    case '/status.js':
      return send(response, 200, 'text/javascript; charset=utf-8', STATUS_JS);
    default:
      return send(response, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
}

async function serveQuarantine(request: IncomingMessage, response: ServerResponse, quarantine: SharedQuarantine, id: string, original: boolean): Promise<void> {
  if (!bearerMatches(request.headers.authorization, quarantine.token)) {
    response.setHeader('www-authenticate', 'Bearer realm="mailmoat"');
    return send(response, 401, 'text/plain; charset=utf-8', 'the fleet token (state.admin_token_file) is required\n');
  }
  let body: Buffer;
  try {
    body = original ? await quarantine.store.original(id) : Buffer.from(JSON.stringify(await quarantine.store.show(id)), 'utf8');
  } catch (error) {
    return send(response, 404, 'text/plain; charset=utf-8', `${(error as Error).message}\n`);
  }
  response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': original ? 'message/rfc822' : 'application/json', 'content-length': body.length });
  response.end(request.method === 'HEAD' ? undefined : body);
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
