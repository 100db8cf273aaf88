/**
 * Drives a real SMTP client, Python's smtplib (test/helpers/smtp_client.py), in
 * plain, STARTTLS or implicit-TLS mode, verifying the server against a CA file.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./smtp_client.py', import.meta.url));

export interface SmtplibOptions {
  port: number;
  mode: 'plain' | 'starttls' | 'implicit';
  cafile?: string;
  /** The name verified and sent as SNI (default 127.0.0.1: no SNI, an IP check). */
  serverHostname?: string;
  /** The local address to connect from (plain and starttls modes), e.g. another 127.0.0.0/8 address. */
  sourceAddress?: string;
}

export interface SmtplibResult {
  ok: boolean;
  error?: string;
  response?: string;
  features_before?: string[];
  features_after?: string[];
  peer_issuer?: string;
  tls_version?: string;
}

export function smtplibSend(options: SmtplibOptions, message: Buffer): Promise<SmtplibResult> {
  const json = JSON.stringify({ host: '127.0.0.1', port: options.port, mode: options.mode, cafile: options.cafile, ...(options.serverHostname ? { server_hostname: options.serverHostname } : {}), ...(options.sourceAddress ? { source_address: options.sourceAddress } : {}) });
  return new Promise((resolve, reject) => {
    const child = execFile('python3', [SCRIPT, json], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as SmtplibResult);
    });
    child.stdin?.end(message);
  });
}
