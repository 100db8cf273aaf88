/**
 * Debian's dkimpy (python3-dkim, /usr/bin/python3) from the tests: sign with DKIM or ARC,
 * verify DKIM, validate an ARC chain, all reading the test's loopback DNS server. It is an
 * implementation independent of mailauth, so a chain mailmoat seals is checked by another.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const TOOL = fileURLToPath(new URL('./dkimpy_tool.py', import.meta.url));
/** Debian's interpreter: python3-dkim is installed for it, not for another python3 on the PATH. */
const DEBIAN_PYTHON = '/usr/bin/python3';

export interface ArcVerification {
  /** pass, fail, none; null when the newest ARC-Seal itself says cv=fail (dkimpy: "the chain is terminated"). */
  cv: string | null;
  results: Record<string, unknown>[];
  comment: string;
}

function call<T>(request: Record<string, unknown>): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = execFile(DEBIAN_PYTHON, [TOOL], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`dkimpy ${String(request.op)}: ${stderr || error.message}`));
      resolve(JSON.parse(stdout) as T);
    });
    child.stdin?.end(JSON.stringify(request));
  });
}

const b64 = (message: Buffer): string => message.toString('base64');

/** `length`: with an l= tag (the body length signed), so text appended later leaves the signature valid. */
export async function dkimpySign(message: Buffer, selector: string, domain: string, key: string, dnsPort: number, length = false): Promise<Buffer> {
  const { message: signed } = await call<{ message: string }>({ op: 'sign', message: b64(message), selector, domain, key, dns_port: dnsPort, length });
  return Buffer.from(signed, 'base64');
}

export async function dkimpyArcSign(message: Buffer, selector: string, domain: string, key: string, srvId: string, dnsPort: number): Promise<Buffer> {
  const { message: sealed } = await call<{ message: string }>({ op: 'arc_sign', message: b64(message), selector, domain, key, srv_id: srvId, dns_port: dnsPort });
  return Buffer.from(sealed, 'base64');
}

export async function dkimpyVerify(message: Buffer, dnsPort: number): Promise<boolean> {
  return (await call<{ dkim: boolean }>({ op: 'verify', message: b64(message), dns_port: dnsPort })).dkim;
}

/** `ed25519`: dkimpy's ARC algorithms extended by ed25519-sha256 (see dkimpy_tool.py). */
export function dkimpyArcVerify(message: Buffer, dnsPort: number, ed25519 = false): Promise<ArcVerification> {
  return call<ArcVerification>({ op: 'arc_verify', message: b64(message), dns_port: dnsPort, ed25519 });
}
