/**
 * The benches' reference point: a do-nothing Node TCP pipe proxy (no protocol, no
 * capture, no inspection). It shows what any Node proxy costs on this machine,
 * so mailmoat's figures can be read against it as well as against direct.
 * Usage: node dist/bench/pipe-proxy.js LISTEN_PORT UPSTREAM_PORT
 * (bench/pop3-retr.ts runs it in its own process with pipeProxy()).
 */
import { connect, createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';

/** A server (not yet listening) that pipes every connection to 127.0.0.1:upstreamPort and back. */
export function pipeProxy(upstreamPort: number): Server {
  return createServer((downstream) => {
    downstream.setNoDelay(true);
    const upstream = connect({ host: '127.0.0.1', port: upstreamPort });
    upstream.setNoDelay(true);
    downstream.pipe(upstream).on('error', () => downstream.destroy());
    upstream.pipe(downstream).on('error', () => upstream.destroy());
    downstream.on('error', () => upstream.destroy());
    upstream.on('error', () => downstream.destroy());
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
  pipeProxy(upstreamPort ?? 25).listen(listenPort, '127.0.0.1');
}
