/**
 * What keeping a rewritten message's authentication costs (src/auth): CPU per rewritten message
 * of verifying the original (DKIM rsa-2048, SPF, DMARC, the ARC chain) and sealing the rewrite
 * (Authentication-Results, ARC set, rsa-2048 or ed25519), with DNS answered by a loopback server in
 * another process (so its CPU is not counted), cold (auth.dns_cache_seconds: 0, every message asks
 * DNS as a new sender domain would) and warm (the same sender again: its answers cached); and the
 * cost on clean messages, which must be none.
 *
 * Usage: node dist/bench/arc.js [--rounds 200]
 */
import { spawn } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes, sign as signBytes, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import dns2 from 'dns2';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MailInspector } from '../src/inspect/inspector.js';
import { createMailInspector } from '../src/inspect/create.js';
import { parsePolicyText } from '../src/config/load.js';
import { arcKeyRecord } from '../src/auth/keygen.js';
import type { InspectionContext, MessageSource } from '../src/inspect/api.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '200' }, 'serve-dns': { type: 'boolean', default: false } } });
const ROUNDS = Number(values.rounds);
/** Rounds run first and not measured (JIT, the key objects' caches). */
const WARMUP_ROUNDS = 20;

/** The child: a UDP DNS server answering the TXT records read as JSON from stdin; prints its port. */
async function serveDns(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  const [line] = await once(lines, 'line');
  const records = new Map(Object.entries(JSON.parse(String(line)) as Record<string, string>));
  const server = dns2.createServer({
    udp: true,
    handle: (request, send) => {
      const [question] = request.questions;
      if (question === undefined) return;
      const response = dns2.Packet.createResponseFromRequest(request);
      const value = records.get(question.name.toLowerCase());
      if (value === undefined) response.header.rcode = 3;
      else response.answers.push(Object.assign(new dns2.Packet.Resource(), { name: question.name, type: dns2.Packet.TYPE.TXT, class: dns2.Packet.CLASS.IN, ttl: 60, data: value.match(/.{1,255}/g) ?? [] }));
      void send(response);
    },
  });
  const { udp } = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  process.stdout.write(`${udp?.port ?? 0}\n`);
  lines.on('close', () => void server.close());
}

const exported = ({ privateKey, publicKey }: { privateKey: KeyObject; publicKey: KeyObject }): { pem: string; der: Buffer } => ({
  pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  der: publicKey.export({ type: 'spki', format: 'der' }),
});
const rsaKey = (): { pem: string; der: Buffer } => exported(generateKeyPairSync('rsa', { modulusLength: 2048 }));

/** The inspector bench's 100 KB message shape, with an executable part (rewritten) or without (clean). */
function benchMessage(withExecutable: boolean): Buffer {
  const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(73 * 1024)]);
  return Buffer.from(
    ['From: Bench <bench@sender.example>', 'To: rcpt@example.net', 'Subject: figures', 'Date: Mon, 07 Dec 2026 10:00:00 +0000', 'Message-ID: <bench@sender.example>', 'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'figures attached', '--b',
      'Content-Type: application/pdf; name="figures.pdf"', 'Content-Disposition: attachment; filename="figures.pdf"', 'Content-Transfer-Encoding: base64', '',
      pdf.toString('base64').replace(/.{76}/g, '$&\r\n'), '--b',
      ...(withExecutable ? ['Content-Type: application/octet-stream; name="tool.exe"', 'Content-Transfer-Encoding: base64', '', 'TVqQAAMAAAAEAAAA', '--b'] : []),
      '--b--', ''].join('\r\n').replace(/--b\r\n--b--/, '--b--'),
  );
}

const memorySource = (bytes: Buffer): MessageSource => ({ size: bytes.length, async *open() { yield bytes; } });

/** CPU (user + system, every thread of this process) and wall ms per round of `work`. */
async function measure(rounds: number, work: () => Promise<void>): Promise<{ cpuMs: number; wallMs: number }> {
  for (let round = 0; round < WARMUP_ROUNDS; round++) await work();
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let round = 0; round < rounds; round++) await work();
  const used = process.cpuUsage(cpu);
  return { cpuMs: (used.user + used.system) / 1000 / rounds, wallMs: (performance.now() - started) / rounds };
}

async function main(): Promise<void> {
  const sender = rsaKey();
  const sealer = rsaKey();
  const edSealer = exported(generateKeyPairSync('ed25519'));
  const records = {
    's1._domainkey.sender.example': arcKeyRecord('s1', 'sender.example', sender.der).value,
    'sender.example': 'v=spf1 ip4:192.0.2.0/24 -all',
    '_dmarc.sender.example': 'v=DMARC1; p=reject',
    'mm._domainkey.mailmoat.test': arcKeyRecord('mm', 'mailmoat.test', sealer.der).value,
    'ed._domainkey.mailmoat.test': arcKeyRecord('ed', 'mailmoat.test', edSealer.der, 'ed25519').value,
  };
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve-dns'], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.write(`${JSON.stringify(records)}\n`);
  const [portLine] = await once(createInterface({ input: child.stdout }), 'line');
  const dnsAddress = `127.0.0.1:${String(portLine)}`;
  try {
    const sign = async (message: Buffer): Promise<Buffer> => {
      const { signatures } = await dkimSign(message, { canonicalization: 'relaxed/relaxed', signatureData: [{ signingDomain: 'sender.example', selector: 's1', privateKey: sender.pem }] });
      return Buffer.concat([Buffer.from(signatures, 'latin1'), message]);
    };
    const rewritten = await sign(benchMessage(true));
    const clean = await sign(benchMessage(false));
    const context: InspectionContext = { sessionId: 'bench', direction: 'inbound', sender: '<bench@sender.example>', recipients: ['<rcpt@example.net>'], client: { address: '192.0.2.25', helo: 'mx.sender.example' } };
    const dir = await mkdtemp(join(tmpdir(), 'mailmoat-arc-bench-'));
    await writeFile(join(dir, 'mm.key'), sealer.pem, { mode: 0o600 });
    await writeFile(join(dir, 'ed.key'), edSealer.pem, { mode: 0o600 });
    const plain = await createMailInspector(parsePolicyText('', 'bench'));
    const sealingWith = (selector: string, cacheSeconds: number): Promise<MailInspector> =>
      createMailInspector(
        parsePolicyText(`auth:\n  authserv_id: mailmoat.test\n  resolver: "${dnsAddress}"\n  dns_cache_seconds: ${cacheSeconds}\n  arc: { domain: mailmoat.test, selector: ${selector}, private_key: ${selector}.key }\n`, 'bench', dir),
      );
    const sealing = await sealingWith('mm', 0);
    const edSealing = await sealingWith('ed', 0);
    const warmSealing = await sealingWith('mm', 300);
    const warmEdSealing = await sealingWith('ed', 300);
    let lastHeader = '';
    let rewrites = 0;
    const inspect = (inspector: MailInspector, message: Buffer) => async (): Promise<void> => {
      const { verdict } = await inspector.examine(memorySource(message), context);
      if (verdict.action !== 'rewrite') return;
      rewrites++;
      const chunks: Buffer[] = [];
      for await (const chunk of verdict.message.open()) chunks.push(chunk);
      await verdict.message.dispose();
      const text = Buffer.concat(chunks).toString('latin1');
      lastHeader = text.slice(0, text.indexOf('\r\n\r\n'));
    };
    const rewriteOnly = await measure(ROUNDS, inspect(plain, rewritten));
    const rewriteSealed = await measure(ROUNDS, inspect(sealing, rewritten));
    const sealedHeader = lastHeader;
    const rewriteEdSealed = await measure(ROUNDS, inspect(edSealing, rewritten));
    if (!/^ARC-Seal: i=1; a=ed25519-sha256; /.test(lastHeader)) throw new Error(`the bench message was not sealed with ed25519:\n${lastHeader}`);
    lastHeader = sealedHeader;
    if (!/^ARC-Seal: i=1; a=rsa-sha256; /.test(lastHeader) || !/\tdkim=pass /.test(lastHeader) || !/\tspf=pass /.test(lastHeader) || !/\tdmarc=pass /.test(lastHeader)) {
      throw new Error(`the bench message did not verify and seal as expected:\n${lastHeader}`);
    }
    const rewriteWarmSealed = await measure(ROUNDS, inspect(warmSealing, rewritten));
    if (!/^ARC-Seal: i=1; a=rsa-sha256; /.test(lastHeader) || !/\tdkim=pass /.test(lastHeader) || !/\tspf=pass /.test(lastHeader) || !/\tdmarc=pass /.test(lastHeader)) throw new Error(`the warm message did not verify and seal as expected:\n${lastHeader}`);
    const rewriteWarmEdSealed = await measure(ROUNDS, inspect(warmEdSealing, rewritten));
    if (!/^ARC-Seal: i=1; a=ed25519-sha256; /.test(lastHeader) || !/\tdkim=pass /.test(lastHeader) || !/\tspf=pass /.test(lastHeader) || !/\tdmarc=pass /.test(lastHeader)) throw new Error(`the warm message did not verify and seal as expected:\n${lastHeader}`);
    rewrites = 0;
    const cleanPlain = await measure(ROUNDS, inspect(plain, clean));
    const cleanSealing = await measure(ROUNDS, inspect(warmSealing, clean));
    // RFC 8617 asks for two signatures per ARC set (ARC-Message-Signature, ARC-Seal): their cost alone.
    const signOnce = (pem: string, algorithm: string | null) => {
      const key = createPrivateKey(pem);
      const data = Buffer.from(lastHeader, 'latin1');
      return async (): Promise<void> => void signBytes(algorithm, data, key);
    };
    const rsaSign = await measure(ROUNDS, signOnce(sealer.pem, 'sha256'));
    const edSign = await measure(ROUNDS, signOnce(edSealer.pem, null));
    const perMessage = (sealed: { cpuMs: number; wallMs: number }): string => `${(sealed.cpuMs - rewriteOnly.cpuMs).toFixed(2)} ms CPU (wall ${(sealed.wallMs - rewriteOnly.wallMs).toFixed(2)} ms)`;
    process.stdout.write(
      `mailmoat ARC bench (node ${process.version}), ${ROUNDS} rounds, DNS answered by a loopback server in another process\n` +
        `  rewritten message (${Math.round(rewritten.length / 1024)} KB, DKIM rsa-2048, SPF, DMARC): inspect+rewrite ${rewriteOnly.cpuMs.toFixed(2)} ms CPU; verify+seal per message on top of it:\n` +
        `    ARC set rsa-2048:  cold (no DNS cache, 4 lookups) ${perMessage(rewriteSealed)}, warm (same sender, answers cached) ${perMessage(rewriteWarmSealed)}\n` +
        `    ARC set ed25519:   cold (no DNS cache, 4 lookups) ${perMessage(rewriteEdSealed)}, warm (same sender, answers cached) ${perMessage(rewriteWarmEdSealed)}\n` +
        `    of which the two ARC signatures alone: rsa-2048 ${(2 * rsaSign.cpuMs).toFixed(2)} ms CPU, ed25519 ${(2 * edSign.cpuMs).toFixed(2)} ms CPU\n` +
        `  clean message (${Math.round(clean.length / 1024)} KB): ${cleanPlain.cpuMs.toFixed(2)} ms CPU without auth, ${cleanSealing.cpuMs.toFixed(2)} ms with it; clean messages rewritten (so verified or sealed): ${rewrites}\n`,
    );
    await plain.close();
    await sealing.close();
    await edSealing.close();
    await warmSealing.close();
    await warmEdSealing.close();
    await rm(dir, { recursive: true, force: true });
  } finally {
    child.stdin.end();
  }
}

if (values['serve-dns']) await serveDns();
else await main();
