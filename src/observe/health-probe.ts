/**
 * `mailmoat health`: asks a running mailmoat's admin listener for GET /healthz
 * (HTTP/1.1, RFC 9110) and reports its answer: ready (200) or not (503, or no
 * answer). It never starts anything itself (no clamd, no listener): it is the probe a
 * service manager, Docker HEALTHCHECK or monitoring runs against the live process.
 */
import { request } from 'node:http';
import type { HostPort } from '../config/schema.js';

/** How long the probe waits for the whole answer (the proxy's PING of a hung clamd takes up to 5 s). */
export const HEALTH_PROBE_TIMEOUT_MS = 10_000;
/** A /healthz answer is a small JSON object; anything longer is not ours. */
const MAX_HEALTH_BODY_BYTES = 64 * 1024;

export interface HealthAnswer {
  ready: boolean;
  /** The status line and body, or why there was no answer. */
  text: string;
}

/** A wildcard listen address is probed on the loopback address of its family. */
export function probeAddress(listen: HostPort): HostPort {
  if (listen.host === '0.0.0.0' || listen.host === '') return { host: '127.0.0.1', port: listen.port };
  if (listen.host === '::') return { host: '::1', port: listen.port };
  return listen;
}

export function probeHealth(target: HostPort, timeoutMs = HEALTH_PROBE_TIMEOUT_MS): Promise<HealthAnswer> {
  const where = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  return new Promise((resolve) => {
    const call = request({ host: target.host, port: target.port, path: '/healthz', method: 'GET', timeout: timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_HEALTH_BODY_BYTES) call.destroy(new Error(`the answer exceeds ${MAX_HEALTH_BODY_BYTES} bytes`));
        else chunks.push(chunk);
      });
      response.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8').trim();
        resolve({ ready: response.statusCode === 200, text: `http://${where}/healthz: ${response.statusCode ?? 0} ${body}` });
      });
    });
    call.on('timeout', () => call.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    call.on('error', (error) => resolve({ ready: false, text: `http://${where}/healthz: ${error.message}` }));
    call.end();
  });
}
