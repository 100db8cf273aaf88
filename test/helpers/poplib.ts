/**
 * Drives a real POP3 client, Python's poplib (test/helpers/pop3_session.py), through
 * a list of steps and returns what it saw: responses, and retrieved messages as the
 * CRLF-joined lines poplib hands an application.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./pop3_session.py', import.meta.url));

export type PoplibStep = [string, ...(string | number)[]];

export interface PoplibResult {
  ok: boolean;
  response?: string;
  error?: string;
  /** The retrieved lines joined with CRLF (RETR, TOP, LIST, UIDL). */
  data?: Buffer;
  capabilities?: string[];
  /** For stls and an implicit-TLS greeting: the common name of the certificate's issuer. */
  issuer?: string;
}

export interface PoplibConnection {
  /** Implicit TLS (POP3_SSL). */
  ssl?: boolean;
  /** The CA that TLS verifies against. */
  cafile?: string;
  /** The name verified and sent as SNI (default 127.0.0.1: no SNI, an IP check). */
  serverHostname?: string;
}

export async function poplibSession(port: number, steps: PoplibStep[], timeoutSeconds = 30, connection: PoplibConnection = {}): Promise<PoplibResult[]> {
  const options = { ...(connection.ssl ? { ssl: true } : {}), ...(connection.cafile ? { cafile: connection.cafile } : {}), ...(connection.serverHostname ? { server_hostname: connection.serverHostname } : {}) };
  const { stdout } = await run('python3', [SCRIPT, '127.0.0.1', String(port), String(timeoutSeconds), JSON.stringify(steps), JSON.stringify(options)], { maxBuffer: 512 * 1024 * 1024 });
  const parsed = JSON.parse(stdout) as { results: (Omit<PoplibResult, 'data'> & { data?: string | null })[] };
  return parsed.results.map(({ data, ...rest }) => ({ ...rest, ...(typeof data === 'string' ? { data: Buffer.from(data, 'base64') } : {}) }));
}
