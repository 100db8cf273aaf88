// The payload step both dialects share (src/session/payload.ts), driven without sockets:
// an in-memory spool, a stub inspector, a real quarantine store in a temporary directory.
// The gate's order, each outcome, and the failures that must become a tempfail, never a pass.
import t, { type Test } from 'tap';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Spool } from '../../src/capture/spool.js';
import { parsePolicyText } from '../../src/config/load.js';
import { createLogger } from '../../src/observe/log.js';
import { QuarantineStore, type FlaggedMessage } from '../../src/quarantine/store.js';
import type { InspectionContext, Inspector, MessageSource, Verdict } from '../../src/inspect/api.js';
import { refusalVerdict, runPayloadStep, type Payload, type PayloadOutcome, type PayloadStep } from '../../src/session/payload.js';

const MESSAGE = 'From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nbody\r\n';

async function readAll(source: MessageSource): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of source.open()) chunks.push(chunk);
  return Buffer.concat(chunks).toString('latin1');
}

/** An inspector that answers `verdict` and records what it was asked. */
function stubInspector(verdict: () => Promise<Verdict>): Inspector & { calls: InspectionContext[] } {
  const calls: InspectionContext[] = [];
  return {
    calls,
    inspect: async (_message, context) => {
      calls.push(context);
      return verdict();
    },
  };
}

function rewritten(text: string): Extract<Verdict, { action: 'rewrite' }> & { disposed: () => boolean } {
  let disposed = false;
  const bytes = Buffer.from(text, 'latin1');
  return {
    action: 'rewrite',
    summary: 'stripped 1 part',
    findings: [{ part: '2', filename: 'a.exe', kind: 'executable', reason: 'executable name' }],
    message: { size: bytes.length, open: async function* () { yield bytes; }, dispose: async () => { disposed = true; } },
    disposed: () => disposed,
  };
}

async function setup(t: Test, options: { policy?: string; inspector?: Inspector; quarantine?: 'ok' | 'broken' | 'off'; step?: Partial<PayloadStep> } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-payload-'));
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  let store: QuarantineStore | undefined;
  if (options.quarantine === 'broken') {
    // A regular file where the quarantine directory should be: every store() fails (ENOTDIR).
    await writeFile(join(dir, 'not-a-dir'), '');
    store = new QuarantineStore(join(dir, 'not-a-dir', 'quarantine'));
  } else if (options.quarantine !== 'off') {
    store = new QuarantineStore(join(dir, 'quarantine'));
  }
  const flagged: FlaggedMessage[] = [];
  const step: PayloadStep = {
    policy: parsePolicyText(options.policy ?? '', 'test'),
    log: createLogger('debug', sink),
    inspector: options.inspector,
    quarantine: store,
    onFlagged: (message) => flagged.push(message),
    refuseBareLineEndings: false,
    headerLimits: 'refuse',
    ...options.step,
  };
  const payload = async (message = MESSAGE, extra: Partial<Payload> = {}): Promise<Payload> => {
    const spool = new Spool({ dir, memoryThresholdBytes: 1024 * 1024 });
    spool.write(Buffer.from(message, 'latin1'));
    t.teardown(() => spool.dispose());
    return {
      spool,
      size: Buffer.byteLength(message, 'latin1'),
      bareLineEndings: 0,
      context: { sessionId: 's1', direction: 'inbound', sender: 'a@example.com', recipients: ['b@example.com'] },
      record: { session: 's1', protocol: 'smtp', direction: 'inbound', sender: 'a@example.com', recipients: ['b@example.com'] },
      ...extra,
    };
  };
  return { dir, step, logs, flagged, store, payload };
}

const summaryOf = (outcome: PayloadOutcome) => ({ kind: outcome.kind, ...('cause' in outcome ? { cause: outcome.cause } : {}), reason: outcome.reason });

t.test('pass: the original spool is forwarded, nothing is quarantined or flagged', async (t) => {
  const inspector = stubInspector(async () => ({ action: 'pass' }));
  const { step, flagged, payload } = await setup(t, { inspector });
  const input = await payload();
  const outcome = await runPayloadStep(step, input);
  t.equal(outcome.kind, 'forward');
  if (outcome.kind !== 'forward') return;
  t.equal(outcome.verdict, 'pass');
  t.equal(outcome.source, input.spool, 'the spool itself, byte for byte');
  t.equal(await readAll(outcome.source), MESSAGE);
  t.equal(outcome.quarantine, undefined);
  t.equal(outcome.headerWarning, undefined);
  t.same(flagged, []);
  t.same(inspector.calls, [input.context], 'the inspector got the context as given');
});

t.test('pass with an annotated message (auth.results_on_every_message): it is forwarded, still a pass, released by the caller', async (t) => {
  const annotated = `Authentication-Results: mailmoat.test; dkim=none\r\n${MESSAGE}`;
  const bytes = Buffer.from(annotated, 'latin1');
  let disposed = false;
  const inspector = stubInspector(async () => ({ action: 'pass', message: { size: bytes.length, open: async function* () { yield bytes; }, dispose: async () => { disposed = true; } } }));
  const { step, flagged, payload, store } = await setup(t, { inspector });
  const input = await payload();
  const outcome = await runPayloadStep(step, input);
  t.equal(outcome.kind, 'forward');
  if (outcome.kind !== 'forward') return;
  t.equal(outcome.verdict, 'pass', 'counted and logged as clean');
  t.not(outcome.source, input.spool);
  t.equal(await readAll(outcome.source), annotated);
  t.same([flagged, await store?.list()], [[], []], 'neither flagged nor quarantined');
  t.notOk(disposed);
  await outcome.release();
  t.ok(disposed, 'release() frees the annotated copy');
});

t.test('inspection off: forwarded as it is, the gate still applies', async (t) => {
  const { step, payload } = await setup(t, { inspector: undefined, policy: 'limits:\n  max_header_lines: 2\n' });
  t.same(summaryOf(await runPayloadStep(step, await payload())), { kind: 'refuse', cause: 'too-many-header-lines', reason: 'more than 2 header lines (limits.max_header_lines)' });
  const { step: open, payload: openPayload } = await setup(t, { inspector: undefined });
  const outcome = await runPayloadStep(open, await openPayload());
  t.same([outcome.kind, outcome.kind === 'forward' ? outcome.verdict : ''], ['forward', 'pass']);
});

t.test('rewrite: the rewritten source is forwarded, the original quarantined, flagged once, released by the caller', async (t) => {
  const verdict = rewritten('rewritten\r\n');
  const { step, flagged, payload, store } = await setup(t, { inspector: stubInspector(async () => verdict) });
  const outcome = await runPayloadStep(step, await payload());
  t.equal(outcome.kind, 'forward');
  if (outcome.kind !== 'forward' || store === undefined) return;
  t.equal(outcome.verdict, 'rewrite');
  t.equal(outcome.reason, 'stripped 1 part');
  t.equal(await readAll(outcome.source), 'rewritten\r\n');
  const records = await store.list();
  t.equal(records.length, 1);
  t.equal(outcome.quarantine, records[0]?.id);
  t.match(records[0], { action: 'rewrite', reason: 'stripped 1 part', protocol: 'smtp', sender: 'a@example.com', recipients: ['b@example.com'] });
  t.equal(flagged.length, 1);
  t.match(flagged[0], { action: 'rewrite', quarantine: outcome.quarantine, findings: [{ filename: 'a.exe' }] });
  t.notOk(verdict.disposed(), 'not released before it is sent');
  await outcome.release();
  t.ok(verdict.disposed());
});

t.test('reject and tempfail verdicts: refused with the inspector\'s reason, the original quarantined', async (t) => {
  for (const action of ['reject', 'tempfail'] as const) {
    const { step, flagged, payload } = await setup(t, { inspector: stubInspector(async () => ({ action, reason: `${action} by policy` })) });
    const outcome = await runPayloadStep(step, await payload());
    t.same(summaryOf(outcome), { kind: action === 'reject' ? 'refuse' : 'tempfail', cause: 'policy', reason: `${action} by policy` });
    if (outcome.kind === 'forward') return;
    t.equal(refusalVerdict(outcome), action);
    t.type(outcome.quarantine, 'string');
    t.equal(flagged.length, 1);
  }
});

t.test('quarantine off: a flagged message is still flagged, without an entry', async (t) => {
  const { step, flagged, payload } = await setup(t, { inspector: stubInspector(async () => ({ action: 'reject', reason: 'infected' })), quarantine: 'off' });
  const outcome = await runPayloadStep(step, await payload());
  t.same(summaryOf(outcome), { kind: 'refuse', cause: 'policy', reason: 'infected' });
  t.equal(outcome.quarantine, undefined);
  t.equal(flagged.length, 1);
  t.equal(flagged[0]?.quarantine, undefined);
});

t.test('a quarantine that cannot store: tempfail, nothing flagged, the rewritten copy released', async (t) => {
  const verdict = rewritten('rewritten\r\n');
  const { step, flagged, logs, payload } = await setup(t, { inspector: stubInspector(async () => verdict), quarantine: 'broken' });
  const outcome = await runPayloadStep(step, await payload());
  t.same(summaryOf(outcome), { kind: 'tempfail', cause: 'quarantine', reason: 'quarantine write failed' });
  t.equal(outcome.kind === 'forward' ? 'pass' : refusalVerdict(outcome), 'tempfail');
  t.same(flagged, []);
  t.ok(verdict.disposed());
  t.ok(logs.some((line) => line.msg === 'quarantine write failed: the message is tempfailed'));
});

t.test('an inspector that throws: tempfail, never a pass', async (t) => {
  const { step, flagged, logs, payload } = await setup(t, { inspector: stubInspector(() => Promise.reject(new Error('scanner exploded'))) });
  t.same(summaryOf(await runPayloadStep(step, await payload())), { kind: 'tempfail', cause: 'inspector', reason: 'inspector failed' });
  t.same(flagged, []);
  t.ok(logs.some((line) => line.msg === 'inspector failed'));
});

t.test('the gate, in order: spool, peer, size, bare line endings, header; none of them reaches the inspector', async (t) => {
  const inspector = stubInspector(async () => ({ action: 'pass' }));
  const { step, payload } = await setup(t, { inspector, policy: 'limits:\n  max_message_bytes: 100\n  max_header_lines: 2\n', step: { refuseBareLineEndings: true } });
  const tooBig = await payload(MESSAGE, { size: 101, bareLineEndings: 1 });
  // Everything wrong at once: each check reports only when the ones before it passed.
  t.same(summaryOf(await runPayloadStep(step, { ...tooBig, peerLost: () => true })), { kind: 'tempfail', cause: 'peer-lost', reason: 'upstream lost' });
  t.same(summaryOf(await runPayloadStep(step, tooBig)), { kind: 'refuse', cause: 'too-big', reason: 'message over max_message_bytes' });
  t.same(summaryOf(await runPayloadStep(step, await payload(MESSAGE, { bareLineEndings: 1 }))), { kind: 'refuse', cause: 'bare-line-endings', reason: 'bare CR or LF line endings' });
  t.same(summaryOf(await runPayloadStep(step, await payload())), { kind: 'refuse', cause: 'too-many-header-lines', reason: 'more than 2 header lines (limits.max_header_lines)' });
  t.same(inspector.calls, []);
});

t.test('bare line endings pass where the dialect does not refuse them', async (t) => {
  const { step, payload } = await setup(t, { inspector: stubInspector(async () => ({ action: 'pass' })) });
  t.equal((await runPayloadStep(step, await payload(MESSAGE, { bareLineEndings: 3 }))).kind, 'forward');
});

t.test('a header block over its byte limit: tempfail where the dialect refuses, a warning where it cannot', async (t) => {
  // One header line longer than the limit, with no line break: the header block never ends within it.
  const long = `X-Long: ${'a'.repeat(2000)}`;
  const policy = 'limits:\n  max_mime_header_bytes: 1024\n';
  const refusing = await setup(t, { inspector: stubInspector(async () => ({ action: 'pass' })), policy });
  t.same(summaryOf(await runPayloadStep(refusing.step, await refusing.payload(long))), { kind: 'tempfail', cause: 'header-too-large', reason: 'header block over 1024 bytes (limits.max_mime_header_bytes)' });
  const warning = await setup(t, { inspector: stubInspector(async () => ({ action: 'pass' })), policy, step: { headerLimits: 'warn' } });
  const outcome = await runPayloadStep(warning.step, await warning.payload(long));
  t.equal(outcome.kind, 'forward');
  if (outcome.kind !== 'forward') return;
  t.same(outcome.headerWarning, { kind: 'too-large', text: 'header block over 1024 bytes (limits.max_mime_header_bytes)' });
});

t.test('a warned header still goes through the inspector, and a refusal there wins', async (t) => {
  const inspector = stubInspector(async () => ({ action: 'reject', reason: 'infected' }));
  const { step, payload } = await setup(t, { inspector, policy: 'limits:\n  max_header_lines: 2\n', step: { headerLimits: 'warn' } });
  t.same(summaryOf(await runPayloadStep(step, await payload())), { kind: 'refuse', cause: 'policy', reason: 'infected' });
  t.equal(inspector.calls.length, 1);
});

t.test('a spool that failed to write: tempfail before any other check', async (t) => {
  const { dir, step, payload, logs } = await setup(t, { inspector: stubInspector(async () => ({ action: 'pass' })) });
  // A spool that must go to disk in a directory that does not exist: the write fails, finish() rejects.
  const spool = new Spool({ dir: join(dir, 'missing'), memoryThresholdBytes: 1 });
  spool.write(Buffer.from(MESSAGE, 'latin1'));
  t.teardown(() => spool.dispose());
  const input = { ...(await payload()), spool, size: 10_000_000, peerLost: () => true };
  t.same(summaryOf(await runPayloadStep(step, input)), { kind: 'tempfail', cause: 'spool', reason: 'spool write failed' });
  t.ok(logs.some((line) => line.msg === 'spool write failed'));
  t.same(await readdir(dir).then((names) => names.filter((name) => name.startsWith('missing'))), []);
});
