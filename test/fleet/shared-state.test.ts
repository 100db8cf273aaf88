// The shared state's pieces against a real redis-server, each as two "nodes" (two
// connections with their own node ids): the per-address counts are atomic under
// concurrency, a crashed node's expired lease does not count, the alert batch is taken
// whole by one node and the hourly cap is the fleet's, Large Message Safety keys reach
// the other node's memory, and with Redis gone every caller gets its per-node answer.
import t, { type Test } from 'tap';
import { Writable } from 'node:stream';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/observe/log.js';
import { SharedState } from '../../src/state/shared-state.js';
import { SharedAdmission } from '../../src/state/admission.js';
import { SharedAlerts } from '../../src/state/alerts.js';
import { SharedLargeMessages } from '../../src/state/large-messages.js';
import { AdmissionControl, type Admission } from '../../src/accept/admission.js';
import { LargeMessageMemory, keyOf, type TransactionKey } from '../../src/capture/large-messages.js';
import type { FlaggedMessage } from '../../src/quarantine/store.js';
import { freePort } from '../helpers/smtp-sink.js';
import { REDIS_SERVER, startRedis } from '../helpers/redis.js';

const logger = createLogger('silent');
const LEASE_MS = 60_000;

async function node(t: Test, url: string, nodeId: string): Promise<SharedState> {
  const state = new SharedState({ url, nodeId, timeoutMs: 1000, logger });
  t.teardown(() => state.close());
  await state.whenUp(5000);
  return state;
}

const limits = { maxSessions: 100, maxSessionsPerAddress: 2, maxConnectionsPerAddressPerMinute: 5, exempt: () => false, ipv6ClientPrefixBits: 64 };

t.test('shared state against a real redis-server', async (t) => {
  t.ok(existsSync(REDIS_SERVER), `redis-server is installed (${REDIS_SERVER})`);
  if (!existsSync(REDIS_SERVER)) return;
  const redis = await startRedis(t);

  t.test('per-address rate and sessions are counted once for two nodes, atomically', async (t) => {
    const [one, two] = [await node(t, redis.url, 'one'), await node(t, redis.url, 'two')];
    const admissions = [new SharedAdmission(one, LEASE_MS), new SharedAdmission(two, LEASE_MS)];
    t.teardown(() => admissions.forEach((admission) => admission.close()));
    const rate = { maxSessionsPerAddress: 1000, maxConnectionsPerAddressPerMinute: 5 };
    const verdicts = await Promise.all(Array.from({ length: 20 }, (_, index) => admissions[index % 2]?.admit('192.0.2.1', rate)));
    t.equal(verdicts.filter((verdict) => verdict?.admitted === true).length, 5, '20 concurrent connections from two nodes: 5 admitted');
    t.equal(verdicts.filter((verdict) => verdict?.admitted === false && verdict.limit === 'max_connections_per_address_per_minute').length, 15);

    const sessions = { maxSessionsPerAddress: 2, maxConnectionsPerAddressPerMinute: 1000 };
    const first = await admissions[0]?.admit('192.0.2.2', sessions);
    const second = await admissions[1]?.admit('192.0.2.2', sessions);
    t.match(await admissions[0]?.admit('192.0.2.2', sessions), { admitted: false, limit: 'max_sessions_per_address' }, 'a third session on either node is refused');
    if (first?.admitted === true) first.release();
    await one.client.ping();
    t.match(await admissions[1]?.admit('192.0.2.2', sessions), { admitted: true }, 'after one ends, another may start');
    t.ok(second?.admitted);

    // A node that crashed left a lease that ran out: it does not count.
    await one.client.zadd('mailmoat:sessions:192.0.2.3', 0, 'crashed:1');
    await one.client.zadd('mailmoat:sessions:192.0.2.3', 0, 'crashed:2');
    t.match(await admissions[0]?.admit('192.0.2.3', sessions), { admitted: true }, "a crashed node's expired leases do not count");
    t.equal(await one.client.zcard('mailmoat:sessions:192.0.2.3'), 1, 'and are removed');
  });

  t.test('alerts: one batch for the fleet, taken whole by one node; the cap is the fleet\'s', async (t) => {
    const [one, two] = [new SharedAlerts(await node(t, redis.url, 'one')), new SharedAlerts(await node(t, redis.url, 'two'))];
    const event = (session: string): FlaggedMessage => ({ time: new Date().toISOString(), session, protocol: 'smtp', direction: 'inbound', sender: '<a@example.org>', recipients: ['<b@example.net>'], action: 'rewrite', reason: 'r', findings: [] });
    t.equal(await one.add(event('s1'), 60_000, 60_000), true, 'the first event opens the batch');
    t.equal(await two.add(event('s2'), 60_000, 60_000), false, "the other node's event joins it");
    t.same((await two.take()).map((taken) => taken.session), ['s1', 's2'], 'one take has both');
    t.same(await one.take(), [], 'the other take has none');
    t.equal(await two.add(event('s3'), 60_000, 60_000), true, 'the next event opens a new batch');
    await two.take();
    t.equal(await one.allow(2), true);
    t.equal(await two.allow(2), true);
    t.equal(await one.allow(2), false, 'the third notice of the hour, from either node, is held back');
    await two.holdBack(3);
    t.equal(await one.takeHeld(), 3, 'the held-back count is the fleet\'s');
    t.equal(await two.takeHeld(), 0);
  });

  t.test("a Large Message Safety key remembered on one node is refused by the other's memory", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mailmoat-fleet-lms-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const [one, two] = [await node(t, redis.url, 'one'), await node(t, redis.url, 'two')];
    // Node two's log: it says when it learned a key (the event this test waits for).
    let learned: () => void = () => undefined;
    const heard = new Promise<void>((resolve) => (learned = resolve));
    const twoLog = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        if (chunk.toString().includes('large message key learned from the fleet')) learned();
        callback();
      },
    });
    const memoryOne = new LargeMessageMemory(join(dir, 'one.json'), 3_600_000, Date.now, new SharedLargeMessages(one, logger));
    const memoryTwo = new LargeMessageMemory(join(dir, 'two.json'), 3_600_000, Date.now, new SharedLargeMessages(two, createLogger('info', twoLog)));
    await two.whenSubscribed();
    const transaction: TransactionKey = { client: '198.51.100.7', helo: 'big.example', sender: '<big@example.org>', recipients: ['<bob@example.net>'], declaredSize: 30_000_000 };
    t.notOk(memoryTwo.has(transaction), 'unknown at first');
    await memoryOne.remember(transaction);
    t.ok((await one.client.pttl(`mailmoat:lms:${keyOf(transaction)}`)) > 3_500_000, 'stored with its TTL');
    await heard;
    t.ok(memoryTwo.has(transaction), "node two's memory refuses it (heard on the channel)");
    t.notOk(memoryTwo.has({ ...transaction, declaredSize: 1 }), 'another transaction is not refused');
    // A node that starts later loads the keys at its connection (SCAN).
    const three = await node(t, redis.url, 'three');
    let loaded: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (loaded = resolve));
    const loadedLog = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        if (chunk.toString().includes('large message keys loaded from the state backend')) loaded();
        callback();
      },
    });
    const memoryThree = new LargeMessageMemory(join(dir, 'three.json'), 3_600_000, Date.now, new SharedLargeMessages(three, createLogger('info', loadedLog)));
    await done;
    t.ok(memoryThree.has(transaction), 'a node that starts later loads it');
  });

  t.test('Redis gone: admission answers from this node at once; commands fail fast', async (t) => {
    const nowhere = new SharedState({ url: `redis://127.0.0.1:${await freePort()}`, nodeId: 'alone', timeoutMs: 200, logger });
    t.teardown(() => nowhere.close());
    const shared = new SharedAdmission(nowhere, LEASE_MS);
    t.teardown(() => shared.close());
    const control = new AdmissionControl(() => limits, Date.now, () => shared);
    const verdict = control.admitAcrossFleet('192.0.2.9');
    t.notOk(verdict instanceof Promise, 'not waiting for a backend that is down');
    t.match(verdict, { admitted: true });

    const state = await node(t, redis.url, 'doomed');
    const failing = new SharedAdmission(state, LEASE_MS);
    t.teardown(() => failing.close());
    const fallback = new AdmissionControl(() => limits, Date.now, () => failing);
    const down = new Promise<void>((resolve) => state.watch((up) => (up ? undefined : resolve())));
    const pending = fallback.admitAcrossFleet('192.0.2.10');
    await redis.kill();
    const answered: Admission = await pending;
    t.match(answered, { admitted: true }, 'a call made as Redis dies is admitted (by Redis, or by the per-node counts)');
    await down;
    t.match(fallback.admitAcrossFleet('192.0.2.10'), { admitted: true }, 'later calls too, without waiting');
    await redis.restart();
    await state.whenUp(5000);
    t.ok(state.available, 'reconnected');
  });
});
