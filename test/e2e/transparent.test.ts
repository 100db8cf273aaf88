/**
 * Transparent interception end to end, in network namespaces this test creates (as root) and
 * removes: client ── gateway ── server (test/helpers/netns.ts). The gateway's nat PREROUTING
 * REDIRECT sends the client's connections to port 25 of the server to a listener in the
 * gateway, which recovers where they were going with the SO_ORIGINAL_DST addon through
 * src/accept/original-destination.ts (its built form in dist/, loaded by the gateway process).
 *
 * Checked: IPv4 on an AF_INET listener, IPv6 (IP6T_SO_ORIGINAL_DST) on an IPv6-only listener,
 * IPv4 on a dual-stack listener (IPv4-mapped socket, SOL_IP), a direct connection to the
 * gateway ('not-redirected'), a DNAT/REDIRECT that lands on the proxy's own listening address
 * ('loop'), and a namespace without any nat table (ENOENT → 'no-nat-table').
 * Without root or namespaces it fails with the reason; it never skips.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { ADDON_PATH, isOwnListeningAddress } from '../../src/accept/original-destination.js';
import { PACKAGE_ROOT } from '../../src/package-root.js';
import { createTopology, LineReader, type NetNs, type Topology } from '../helpers/netns.js';

const DIST_MODULE = join(PACKAGE_ROOT, 'dist', 'src', 'accept', 'original-destination.js');

/** What the listener in the namespace reports for each connection (one JSON line). */
interface Report {
  listener: number;
  local: { host: string; port: number };
  raw: { address: string; port: number; family: number } | null;
  rawError: { code: string; message: string } | null;
  result: { host: string; port: number } | null;
  error: { name: string; reason: string; code?: string; message: string } | null;
}

/**
 * Listens on each `host:port` of argv[3] (JSON [{host, port, ipv6Only}]); for each connection,
 * reads the addon's raw answer and the classified one (with the listeners as loop protection),
 * prints them as a JSON line and sends the same line to the client.
 */
const LISTENER_SCRIPT = `
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
const [moduleUrl, addonPath, listenJson] = process.argv.slice(1);
const { originalDestination } = await import(moduleUrl);
const addon = createRequire(addonPath)(addonPath);
const listeners = JSON.parse(listenJson);
const listening = listeners.map(({ host, port }) => ({ host, port }));
await Promise.all(listeners.map(({ host, port, ipv6Only }) => new Promise((resolve, reject) => {
  const server = createServer((socket) => {
    const report = { listener: port, local: { host: socket.localAddress, port: socket.localPort }, raw: null, rawError: null, result: null, error: null };
    try { report.raw = addon.originalDestination(socket._handle.fd); } catch (e) { report.rawError = { code: e.code, message: e.message }; }
    try { report.result = originalDestination(socket, listening); } catch (e) { report.error = { name: e.name, reason: e.reason, code: e.code, message: e.message }; }
    const line = JSON.stringify(report);
    process.stdout.write(line + '\\n');
    socket.on('error', () => {});
    socket.end(line + '\\n');
  });
  server.once('error', reject);
  server.listen({ host, port, ipv6Only }, resolve);
})));
process.stdout.write(JSON.stringify({ ready: true }) + '\\n');
process.on('SIGTERM', () => process.exit(0));
`;

/** Connects to argv[1]:argv[2], prints what the other end sent, exits 1 on error or after 10 s. */
const CLIENT_SCRIPT = `
import { connect } from 'node:net';
const [host, port] = process.argv.slice(1);
const socket = connect({ host, port: Number(port) });
let data = '';
const timer = setTimeout(() => { console.error('client: timed out'); process.exit(1); }, 10000);
socket.on('data', (chunk) => { data += chunk; });
socket.on('end', () => { clearTimeout(timer); process.stdout.write(data); });
socket.on('error', (e) => { console.error('client: ' + e.message); process.exit(1); });
`;

interface Listener {
  host: string;
  port: number;
  ipv6Only?: boolean;
}

function startListeners(topology: Topology, ns: NetNs, listeners: Listener[]): Promise<LineReader> {
  const child = topology.spawnIn(ns, process.execPath, [
    '--input-type=module',
    '-e',
    LISTENER_SCRIPT,
    pathToFileURL(DIST_MODULE).href,
    ADDON_PATH,
    JSON.stringify(listeners),
  ]);
  const reader = new LineReader(child);
  return reader.next((line) => line.includes('"ready"')).then(() => reader);
}

/** Connects from the client namespace; returns the listener's report as the client received it. */
async function connectFromClient(topology: Topology, host: string, port: number): Promise<Report> {
  const { stdout } = await topology.exec(topology.client, process.execPath, ['--input-type=module', '-e', CLIENT_SCRIPT, host, String(port)]);
  return JSON.parse(stdout.trim()) as Report;
}

t.test('isOwnListeningAddress (loop protection)', async (t) => {
  const locals = ['127.0.0.1', '10.9.1.1', 'fd00:9::1', '::1'];
  t.ok(isOwnListeningAddress({ host: '10.9.1.1', port: 10025 }, [{ host: '10.9.1.1', port: 10025 }], () => locals), 'exact address');
  t.ok(isOwnListeningAddress({ host: '10.9.1.1', port: 10025 }, [{ host: '::ffff:10.9.1.1', port: 10025 }], () => locals), 'IPv4-mapped listener');
  t.ok(isOwnListeningAddress({ host: '10.9.1.1', port: 10025 }, [{ host: '0.0.0.0', port: 10025 }], () => locals), 'wildcard IPv4 listener, local address');
  t.ok(isOwnListeningAddress({ host: 'FD00:9::1', port: 10025 }, [{ host: '::', port: 10025 }], () => locals), 'wildcard IPv6 listener, local address');
  t.ok(isOwnListeningAddress({ host: '127.0.0.5', port: 10025 }, [{ host: '0.0.0.0', port: 10025 }], () => locals), 'wildcard listener, loopback');
  t.notOk(isOwnListeningAddress({ host: '10.9.2.2', port: 10025 }, [{ host: '0.0.0.0', port: 10025 }], () => locals), 'wildcard listener, remote address');
  t.notOk(isOwnListeningAddress({ host: '10.9.1.1', port: 25 }, [{ host: '0.0.0.0', port: 10025 }], () => locals), 'other port');
  t.notOk(isOwnListeningAddress({ host: '10.9.1.1', port: 10025 }, [{ host: '127.0.0.1', port: 10025 }], () => locals), 'specific listener, other address');
});

t.test('transparent interception in network namespaces (root)', async (t) => {
  t.ok(existsSync(ADDON_PATH), `the SO_ORIGINAL_DST addon is built (${ADDON_PATH}; npm run build:addon)`);
  t.ok(existsSync(DIST_MODULE), `the TypeScript is built (${DIST_MODULE}; npm run build)`);
  if (!existsSync(ADDON_PATH) || !existsSync(DIST_MODULE)) return;

  const topology = await createTopology(t);
  const { client, gateway, server } = topology;
  t.comment(`namespaces ${client.name}, ${gateway.name}, ${server.name}; ${client.address} → ${gateway.clientSide.address}|${gateway.serverSide.address} → ${server.address}`);

  const PLAIN4 = 10025; // AF_INET listener
  const ONLY6 = 10026; // IPv6-only listener
  const DUAL = 10027; // dual-stack listener: IPv4 arrives IPv4-mapped
  const gw = await startListeners(topology, gateway, [
    { host: '0.0.0.0', port: PLAIN4 },
    { host: '::', port: ONLY6, ipv6Only: true },
    { host: '::', port: DUAL, ipv6Only: false },
  ]);
  await topology.redirect(25, PLAIN4);
  await topology.redirect(25, ONLY6, { family: 6 });
  await topology.redirect(587, DUAL);
  // Traffic for the gateway's server-side address at the proxy's own port, REDIRECTed to the
  // client-side address: the original destination is the proxy's own listener on another address.
  await topology.redirect(PLAIN4, PLAIN4, { destination: gateway.serverSide.address });

  await t.test('IPv4 redirected to an AF_INET listener: SO_ORIGINAL_DST', async (t) => {
    const report = await connectFromClient(topology, server.address, 25);
    t.same(report.raw, { address: server.address, port: 25, family: 4 }, 'the addon reads the original destination');
    t.same(report.result, { host: server.address, port: 25 }, 'originalDestination() returns the server, port 25');
    t.same(report.local, { host: gateway.clientSide.address, port: PLAIN4 }, 'the connection itself landed on the gateway listener');
    t.same(JSON.parse(await gw.next()) as Report, report, 'the gateway logged the same');
  });

  await t.test('IPv6 redirected to an IPv6-only listener: IP6T_SO_ORIGINAL_DST', async (t) => {
    const report = await connectFromClient(topology, server.address6, 25);
    t.same(report.raw, { address: server.address6, port: 25, family: 6 }, 'the addon reads the IPv6 original destination');
    t.same(report.result, { host: server.address6, port: 25 }, 'originalDestination() returns the server, port 25');
    t.equal(report.listener, ONLY6, 'on the IPv6-only listener');
    await gw.next();
  });

  await t.test('IPv4 on a dual-stack listener (IPv4-mapped socket) uses SOL_IP', async (t) => {
    const report = await connectFromClient(topology, server.address, 587);
    t.equal(report.local.host, `::ffff:${gateway.clientSide.address}`, 'the socket is IPv4-mapped IPv6');
    t.same(report.raw, { address: server.address, port: 587, family: 4 }, 'the addon reads it with SOL_IP');
    t.same(report.result, { host: server.address, port: 587 }, 'originalDestination() returns the server, port 587');
    await gw.next();
  });

  await t.test('a direct connection to the gateway is not-redirected', async (t) => {
    const report = await connectFromClient(topology, gateway.clientSide.address, PLAIN4);
    t.same(report.raw, { address: gateway.clientSide.address, port: PLAIN4, family: 4 }, 'conntrack answers with the connection’s own local address');
    t.equal(report.result, null, 'no destination is returned');
    t.equal(report.error?.name, 'OriginalDestinationError', 'an OriginalDestinationError is thrown');
    t.equal(report.error?.reason, 'not-redirected', "with reason 'not-redirected'");
    t.match(report.error?.message ?? '', /own local address/, 'and a message saying why');
    await gw.next();
  });

  await t.test("an original destination that is the proxy's own listening address is a loop", async (t) => {
    const report = await connectFromClient(topology, gateway.serverSide.address, PLAIN4);
    t.same(report.local, { host: gateway.clientSide.address, port: PLAIN4 }, 'REDIRECT moved it to the client-side address');
    t.same(report.raw, { address: gateway.serverSide.address, port: PLAIN4, family: 4 }, 'the original destination is the server-side address, same port');
    t.equal(report.error?.reason, 'loop', "reason 'loop' (the wildcard listener owns that address)");
    t.match(report.error?.message ?? '', /own listening addresses/, 'and a message saying why');
    await gw.next();
  });

  await t.test('a namespace without a nat table: ENOENT → no-nat-table', async (t) => {
    // The server namespace has no iptables/nftables rules at all, hence no conntrack entries.
    const plain = await startListeners(topology, server, [{ host: '0.0.0.0', port: PLAIN4 }]);
    const report = await connectFromClient(topology, server.address, PLAIN4);
    t.equal(report.raw, null, 'the addon returns nothing');
    t.equal(report.rawError?.code, 'ENOENT', 'getsockopt(SO_ORIGINAL_DST) fails with ENOENT');
    t.equal(report.error?.reason, 'no-nat-table', "reason 'no-nat-table'");
    t.equal(report.error?.code, 'ENOENT', 'the errno name is kept');
    t.match(report.error?.message ?? '', /ENOENT: the connection was not redirected by iptables\/nftables NAT, or the nat table is missing/, 'and the message says why');
    await plain.next();
  });
});
