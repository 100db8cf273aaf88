// The PROXY protocol header (haproxy.org doc/proxy-protocol.txt), v1 and v2: parsed from
// every split of its bytes over a real loopback connection, the bytes behind it handed on
// intact, and every malformed header refused with its reason.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_V1_BYTES, parseProxyHeader, ProxyHeaderError, readProxyHeader, type ProxyHeader } from '../../src/accept/proxy-protocol.js';

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header: command (0 LOCAL, 1 PROXY), family/transport byte, address block. */
function v2(command: number, familyTransport: number, block: Buffer, version = 2): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = (version << 4) | command;
  fixed[1] = familyTransport;
  fixed.writeUInt16BE(block.length, 2);
  return Buffer.concat([SIGNATURE, fixed, block]);
}

function ipv4Block(source: number[], destination: number[], sourcePort: number, destinationPort: number, tlvs = Buffer.alloc(0)): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sourcePort, 0);
  ports.writeUInt16BE(destinationPort, 2);
  return Buffer.concat([Buffer.from(source), Buffer.from(destination), ports, tlvs]);
}

function ipv6Block(): Buffer {
  const source = Buffer.from('20010db8000000000000000000000001', 'hex');
  const destination = Buffer.from('20010db8000000000000000000000025', 'hex');
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(40000, 0);
  ports.writeUInt16BE(25, 2);
  return Buffer.concat([source, destination, ports]);
}

/** A TLV: type 0x01 (ALPN), and a NOOP (0x04) padding one. */
const TLVS = Buffer.concat([Buffer.from([0x01, 0x00, 0x04]), Buffer.from('smtp'), Buffer.from([0x04, 0x00, 0x02, 0x00, 0x00])]);

const CASES: { name: string; bytes: Buffer; header: ProxyHeader }[] = [
  { name: 'v1 TCP4', bytes: Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 51234 25\r\n'), header: { version: 1, source: { address: '203.0.113.7', port: 51234 }, destination: { address: '192.0.2.1', port: 25 } } },
  { name: 'v1 TCP6', bytes: Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::25 40000 25\r\n'), header: { version: 1, source: { address: '2001:db8::1', port: 40000 }, destination: { address: '2001:db8::25', port: 25 } } },
  { name: 'v1 TCP6 spelled differently', bytes: Buffer.from('PROXY TCP6 2001:DB8:0:0::1 0:0:0:0:0:ffff:c000:219 40000 25\r\n'), header: { version: 1, source: { address: '2001:db8::1', port: 40000 }, destination: { address: '::ffff:192.0.2.25', port: 25 } } },
  { name: 'v1 UNKNOWN', bytes: Buffer.from('PROXY UNKNOWN\r\n'), header: { version: 1 } },
  { name: 'v1 UNKNOWN with addresses', bytes: Buffer.from('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n'), header: { version: 1 } },
  { name: 'v2 PROXY IPv4', bytes: v2(1, 0x11, ipv4Block([203, 0, 113, 7], [192, 0, 2, 1], 51234, 25)), header: { version: 2, source: { address: '203.0.113.7', port: 51234 }, destination: { address: '192.0.2.1', port: 25 } } },
  { name: 'v2 PROXY IPv4 with TLVs', bytes: v2(1, 0x11, ipv4Block([10, 1, 2, 3], [192, 0, 2, 1], 1025, 587, TLVS)), header: { version: 2, source: { address: '10.1.2.3', port: 1025 }, destination: { address: '192.0.2.1', port: 587 } } },
  { name: 'v2 PROXY IPv6', bytes: v2(1, 0x21, ipv6Block()), header: { version: 2, source: { address: '2001:db8::1', port: 40000 }, destination: { address: '2001:db8::25', port: 25 } } },
  { name: 'v2 LOCAL (a health check)', bytes: v2(0, 0x00, Buffer.alloc(0)), header: { version: 2 } },
  { name: 'v2 PROXY UNSPEC', bytes: v2(1, 0x00, Buffer.alloc(0)), header: { version: 2 } },
  { name: 'v2 PROXY UNIX', bytes: v2(1, 0x31, Buffer.alloc(216)), header: { version: 2 } },
];

const MALFORMED: { name: string; bytes: Buffer; reason: string }[] = [
  { name: 'an SMTP command instead of a header', bytes: Buffer.from('EHLO client.example\r\n'), reason: 'missing' },
  { name: 'a TLS ClientHello instead of a header', bytes: Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5]), reason: 'missing' },
  { name: 'lower-case proxy', bytes: Buffer.from('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), reason: 'missing' },
  { name: `v1 without CRLF in ${MAX_V1_BYTES} bytes`, bytes: Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), reason: 'too-long' },
  { name: 'v1 with a bad address', bytes: Buffer.from('PROXY TCP4 203.0.113.999 192.0.2.1 51234 25\r\n'), reason: 'malformed' },
  { name: 'v1 TCP4 with IPv6 addresses', bytes: Buffer.from('PROXY TCP4 2001:db8::1 2001:db8::25 1 25\r\n'), reason: 'malformed' },
  { name: 'v1 with a port over 65535', bytes: Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 65536 25\r\n'), reason: 'malformed' },
  { name: 'v1 with a missing field', bytes: Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n'), reason: 'malformed' },
  { name: 'v1 with an unknown family', bytes: Buffer.from('PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n'), reason: 'malformed' },
  { name: 'v2 with version 3', bytes: v2(1, 0x11, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), 3), reason: 'unsupported' },
  { name: 'v2 with command 2', bytes: v2(2, 0x11, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), reason: 'malformed' },
  { name: 'v2 over DGRAM', bytes: v2(1, 0x12, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), reason: 'unsupported' },
  { name: 'v2 IPv4 with a short address block', bytes: v2(1, 0x11, Buffer.alloc(8)), reason: 'malformed' },
  { name: 'v2 with an address block over the limit', bytes: v2(1, 0x11, Buffer.alloc(2000)), reason: 'too-long' },
];

/** A loopback connection: the accepted end (`server`) and the connecting one (`client`). */
async function pair(t: Test): Promise<{ server: Socket; client: Socket }> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = connect({ host: '127.0.0.1', port: (listener.address() as AddressInfo).port });
  client.setNoDelay(true);
  const [server] = await accepted;
  listener.close();
  t.teardown(() => {
    client.destroy();
    server.destroy();
  });
  return { server, client };
}

/** Sends `bytes` cut at `cuts` (each piece its own write, a pause between), then `after`. */
async function sendPieces(client: Socket, bytes: Buffer, cuts: number[], after: Buffer): Promise<void> {
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut <= start) continue;
    client.write(bytes.subarray(start, cut));
    start = cut;
    await sleep(1);
  }
  client.write(after);
}

/** What the next reader gets once the header is read: everything the client sent after it. */
async function readRest(server: Socket, expected: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  server.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    length += chunk.length;
  });
  server.resume();
  for (let waited = 0; length < expected && waited < 2000; waited += 5) await sleep(5);
  return Buffer.concat(chunks);
}

t.test('parseProxyHeader: each valid header, complete and with bytes after it', async (t) => {
  for (const { name, bytes, header } of CASES) {
    const parsed = parseProxyHeader(Buffer.concat([bytes, Buffer.from('EHLO x\r\n')]));
    t.same(parsed, { header, length: bytes.length }, name);
    for (let cut = 1; cut < bytes.length; cut++) {
      if (parseProxyHeader(bytes.subarray(0, cut)) !== undefined) t.fail(`${name}: complete after only ${cut} bytes`);
    }
  }
});

t.test('parseProxyHeader: malformed headers are refused with their reason', async (t) => {
  for (const { name, bytes, reason } of MALFORMED) {
    t.throws(() => parseProxyHeader(bytes), { name: 'ProxyHeaderError', reason }, name);
  }
  t.throws(() => parseProxyHeader(Buffer.from('X')), { name: 'ProxyHeaderError', reason: 'missing' }, 'the first byte decides, without waiting for more');
});

t.test('readProxyHeader over a real connection: one byte per write, and the bytes behind it stay', async (t) => {
  for (const { name, bytes, header } of CASES) {
    const { server, client } = await pair(t);
    const cuts = Array.from({ length: bytes.length }, (_, index) => index);
    const after = Buffer.from('EHLO client.example\r\nQUIT\r\n');
    const read = readProxyHeader(server, 5000);
    await sendPieces(client, bytes, cuts, after);
    t.same(await read, header, `${name}: parsed`);
    t.same(await readRest(server, after.length), after, `${name}: the next reader gets the bytes after the header`);
  }
});

t.test('readProxyHeader: random splits of header and data give the same result (property)', async (t) => {
  const headers = CASES.filter((entry) => entry.header.source !== undefined);
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: headers.length - 1 }), fc.array(fc.integer({ min: 1, max: 60 }), { maxLength: 4 }), fc.uint8Array({ minLength: 1, maxLength: 64 }), async (which, cuts, payload) => {
      const entry = headers[which];
      if (entry === undefined) return false;
      const { server, client } = await pair(t);
      const read = readProxyHeader(server, 5000);
      await sendPieces(client, entry.bytes, [...new Set(cuts)].sort((a, b) => a - b), Buffer.from(payload));
      const header = await read;
      const rest = await readRest(server, payload.length);
      return JSON.stringify(header) === JSON.stringify(entry.header) && rest.equals(Buffer.from(payload));
    }),
    { numRuns: 25 },
  );
  t.pass('25 random splits');
});

t.test('readProxyHeader refuses: malformed, truncated then closed, and silence', async (t) => {
  for (const { name, bytes, reason } of MALFORMED) {
    const { server, client } = await pair(t);
    const read = readProxyHeader(server, 5000);
    client.write(bytes);
    await t.rejects(read, { name: 'ProxyHeaderError', reason }, name);
  }
  const truncated = await pair(t);
  const cut = readProxyHeader(truncated.server, 5000);
  truncated.client.end(Buffer.from('PROXY TCP4 203.0.113.7 192.0'));
  await t.rejects(cut, { name: 'ProxyHeaderError', reason: 'closed' }, 'a header cut off by the client closing');

  const silent = await pair(t);
  const started = Date.now();
  await t.rejects(readProxyHeader(silent.server, 300), { name: 'ProxyHeaderError', reason: 'timeout' }, 'no bytes: the time limit');
  t.ok(Date.now() - started >= 250, 'after the time limit, not before');
  t.ok(new ProxyHeaderError('missing', 'x') instanceof Error);
});
