/**
 * A small throwaway "upstream PKI" for the TLS tests and benches, made with the
 * `openssl` CLI in a folder the caller owns (and removes):
 *
 * - upstream-ca.pem / upstream-ca.key: a CA (basicConstraints CA:TRUE, keyCertSign);
 *   this is the CA file the proxy is given to verify its upstreams.
 * - server.pem / server.key: a server certificate for CN=localhost with the SANs
 *   DNS:localhost and IP:127.0.0.1 (serverAuth), signed by that CA; server.pem
 *   holds the leaf only.
 * - untrusted.pem / untrusted.key: a self-signed server certificate for the same
 *   names, which does not chain to the CA: an upstream presenting it must be refused.
 *
 * Keys are EC P-256, signatures SHA-256, every certificate valid from ten minutes
 * ago (clock skew between the processes is harmless) for a day. `openssl ca` is
 * used rather than `req -x509`/`x509 -req` because OpenSSL 3.0 can only set a
 * start date in the past there. openssl's output is collected, never inherited,
 * and is part of the error when a step fails.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TestPki {
  /** The folder holding everything below. */
  dir: string;
  /** The CA certificate (PEM): what verifiers trust. */
  caFile: string;
  caKeyFile: string;
  /** Leaf for localhost / 127.0.0.1, signed by the CA. */
  certFile: string;
  keyFile: string;
  /** Self-signed leaf for the same names, not trusted by the CA file. */
  untrustedCertFile: string;
  untrustedKeyFile: string;
}

const OPENSSL = 'openssl';
const SANS = 'DNS:localhost, IP:127.0.0.1';

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(OPENSSL, args, { cwd, timeout: 30000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`openssl ${args[0] ?? ''} failed: ${error.message}\n${stdout}${stderr}`.trim()));
      else resolve();
    });
  });
}

/** ASN.1 GeneralizedTime as `openssl ca -startdate/-enddate` takes it: YYYYMMDDHHMMSSZ. */
function asn1Time(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

function caConfig(work: string): string {
  return [
    '[ ca ]',
    'default_ca = upstream_ca',
    '',
    '[ upstream_ca ]',
    `database = ${join(work, 'index.txt')}`,
    `new_certs_dir = ${work}`,
    `serial = ${join(work, 'serial')}`,
    'default_md = sha256',
    'policy = policy_any',
    'unique_subject = no',
    'copy_extensions = none',
    'email_in_dn = no',
    'preserve = yes',
    '',
    '[ policy_any ]',
    'organizationName = optional',
    'commonName = supplied',
    '',
    '[ ca_ext ]',
    'basicConstraints = critical, CA:TRUE, pathlen:0',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
    '',
    '[ server_ext ]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    'extendedKeyUsage = serverAuth',
    `subjectAltName = ${SANS}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
    '',
    '[ untrusted_ext ]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    'extendedKeyUsage = serverAuth',
    `subjectAltName = ${SANS}`,
    'subjectKeyIdentifier = hash',
    '',
  ].join('\n');
}

export async function createTestPki(dir: string): Promise<TestPki> {
  const pki: TestPki = {
    dir,
    caFile: join(dir, 'upstream-ca.pem'),
    caKeyFile: join(dir, 'upstream-ca.key'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
    untrustedCertFile: join(dir, 'untrusted.pem'),
    untrustedKeyFile: join(dir, 'untrusted.key'),
  };
  await mkdir(dir, { recursive: true });
  const work = join(dir, '.openssl-ca');
  await rm(work, { recursive: true, force: true });
  await mkdir(work);
  try {
    const config = join(work, 'ca.cnf');
    await writeFile(config, caConfig(work));
    await writeFile(join(work, 'index.txt'), '');
    // A random positive first serial: two PKIs made in a row never share issuer + serial.
    await writeFile(join(work, 'serial'), `${(0x10 + (randomBytes(1)[0] ?? 0) % 0x70).toString(16)}${randomBytes(8).toString('hex')}\n`);

    const now = Date.now();
    const validity = ['-startdate', asn1Time(new Date(now - 10 * 60 * 1000)), '-enddate', asn1Time(new Date(now + 24 * 60 * 60 * 1000))];
    const newKey = (file: string): Promise<void> => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], work);
    const request = (key: string, subject: string, out: string): Promise<void> => openssl(['req', '-new', '-config', config, '-key', key, '-subj', subject, '-out', out], work);
    const sign = (args: string[]): Promise<void> => openssl(['ca', '-batch', '-notext', '-config', config, ...validity, ...args], work);

    await Promise.all([newKey(pki.caKeyFile), newKey(pki.keyFile), newKey(pki.untrustedKeyFile)]);
    await Promise.all([
      request(pki.caKeyFile, '/O=mailmoat tests/CN=mailmoat test upstream CA', join(work, 'ca.csr')),
      request(pki.keyFile, '/O=mailmoat tests/CN=localhost', join(work, 'server.csr')),
      request(pki.untrustedKeyFile, '/O=mailmoat untrusted/CN=localhost', join(work, 'untrusted.csr')),
    ]);
    // One at a time: `openssl ca` rewrites its index.txt.
    await sign(['-selfsign', '-keyfile', pki.caKeyFile, '-extensions', 'ca_ext', '-in', join(work, 'ca.csr'), '-out', pki.caFile]);
    await sign(['-cert', pki.caFile, '-keyfile', pki.caKeyFile, '-extensions', 'server_ext', '-in', join(work, 'server.csr'), '-out', pki.certFile]);
    await sign(['-selfsign', '-keyfile', pki.untrustedKeyFile, '-extensions', 'untrusted_ext', '-in', join(work, 'untrusted.csr'), '-out', pki.untrustedCertFile]);
    await Promise.all([pki.caKeyFile, pki.keyFile, pki.untrustedKeyFile].map((key) => chmod(key, 0o600)));
    await Promise.all([pki.caFile, pki.certFile, pki.untrustedCertFile].map((cert) => chmod(cert, 0o644)));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return pki;
}
