/**
 * The bench's reference point: a do-nothing Node TCP pipe proxy (no protocol, no
 * capture, no inspection). It shows what any Node proxy costs on this machine,
 * so mailmoat's figures can be read against it as well as against direct.
 * Usage: node dist/bench/pipe-proxy.js LISTEN_PORT UPSTREAM_PORT
 */
import { connect, createServer } from 'node:net';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
createServer((downstream) => {
  downstream.setNoDelay(true);
  const upstream = connect({ host: '127.0.0.1', port: upstreamPort ?? 25 });
  upstream.setNoDelay(true);
  downstream.pipe(upstream).on('error', () => downstream.destroy());
  upstream.pipe(downstream).on('error', () => upstream.destroy());
  downstream.on('error', () => upstream.destroy());
  upstream.on('error', () => downstream.destroy());
}).listen(listenPort, '127.0.0.1');
