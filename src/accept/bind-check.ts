/**
 * `mailmoat check`: can each listener's address be bound here? It binds and closes at once.
 * EACCES (a port under 1024 without CAP_NET_BIND_SERVICE) and EADDRNOTAVAIL (an address this
 * machine does not have) can never work: check fails. EADDRINUSE may be a running mailmoat
 * (check before a reload): it is reported, not a failure; `start` itself exits 1 on it.
 */
import { createServer } from 'node:net';
import { parseHostPort } from '../config/schema.js';

export interface BindCheck {
  listen: string;
  ok: boolean;
  text: string;
}

export async function checkBind(listen: string): Promise<BindCheck> {
  const address = parseHostPort(listen);
  if (address === undefined) return { listen, ok: false, text: 'not host:port' };
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: address.host, port: address.port, exclusive: true }, () => resolve());
    });
    return { listen, ok: true, text: 'can be bound' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'EADDRINUSE') return { listen, ok: true, text: 'in use (by a running mailmoat? start fails if it is another program)' };
    if (code === 'EACCES') return { listen, ok: false, text: 'EACCES: a port under 1024 needs root or CAP_NET_BIND_SERVICE (the systemd unit grants it)' };
    return { listen, ok: false, text: `${code || 'error'}: ${(error as Error).message}` };
  } finally {
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
