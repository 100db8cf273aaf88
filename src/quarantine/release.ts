/**
 * Releases a quarantined original: re-submits it, byte for byte, by SMTP (RFC 5321;
 * nodemailer's SMTP client does the dot-stuffing and uses STARTTLS when the server
 * offers it, verified against the same roots as the proxy's upstream leg) to the
 * configured upstream, with the original envelope or to the address an
 * administrator gives (Mailtraq's "resubmit").
 */
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { HostPort } from '../config/schema.js';
import type { QuarantineRecord } from './store.js';

/** How long each step of a release may take (connect, greeting, each reply). */
const RELEASE_TIMEOUT_MS = 60_000;

export interface ReleaseTarget {
  upstream: HostPort;
  /** Roots for the upstream's certificate when it offers STARTTLS. */
  roots: readonly string[];
  /** The EHLO name mailmoat gives. */
  heloName: string;
}

const bare = (path: string): string => path.replace(/^<|>$/g, '');

/** The envelope of a release: the original one, or `to` instead of the original recipients. */
export function releaseEnvelope(record: QuarantineRecord, to: readonly string[]): { from: string; to: string[] } {
  const recipients = to.length > 0 ? [...to] : record.recipients.map(bare).filter(Boolean);
  if (recipients.length === 0) throw new Error(`quarantine entry ${record.id} has no recipient (a POP3 retrieval): give --to ADDRESS`);
  return { from: bare(record.sender), to: recipients };
}

/** Submits a message by SMTP (releases and alerts); resolves with the upstream's reply to the end of data. */
export function submitMessage(target: ReleaseTarget, envelope: { from: string; to: string[] }, message: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const connection = new SMTPConnection({
      host: target.upstream.host,
      port: target.upstream.port,
      secure: false,
      name: target.heloName,
      connectionTimeout: RELEASE_TIMEOUT_MS,
      greetingTimeout: RELEASE_TIMEOUT_MS,
      socketTimeout: RELEASE_TIMEOUT_MS,
      tls: { ca: [...target.roots] },
    });
    connection.once('error', (error: Error) => reject(error));
    connection.connect((connectError) => {
      if (connectError) {
        connection.close();
        reject(connectError);
        return;
      }
      connection.send(envelope, message, (sendError, info) => {
        if (sendError) {
          connection.close();
          reject(sendError);
          return;
        }
        connection.quit();
        resolve(info.response);
      });
    });
  });
}
