// Property: cutting a downstream transcript at any offset (two TCP writes) changes nothing the
// upstream receives, nor the replies the downstream gets.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';

const TRANSCRIPT =
  'EHLO split.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n' +
  'Subject: split\r\n\r\n..dot line\r\nbare\nlf and bare\rcr\r\n.\r\n' +
  'MAIL FROM:<c@example.org>\r\nRCPT TO:<d@example.net>\r\nDATA\r\n.\r\nQUIT\r\n';

t.test('the upstream receives the same bytes wherever the transcript is cut', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const wire = Buffer.from(TRANSCRIPT, 'latin1');
  let reference: { raw: string; codes: number[] } | undefined;
  for (let cut = 0; cut <= wire.length; cut++) {
    const client = await RawClient.greeted(proxy.port);
    client.send(wire.subarray(0, cut));
    await sleep(2);
    client.send(wire.subarray(cut));
    await client.waitForClose();
    const session = upstream.sessions.at(-1);
    const observed = { raw: session?.raw.toString('latin1') ?? '', codes: client.codes() };
    if (reference === undefined) {
      reference = observed;
      t.same(observed.codes, [220, 250, 250, 250, 354, 250, 250, 250, 354, 250, 221], 'the reference run');
      t.match(observed.raw, /DATA\r\nSubject: split\r\n\r\n\.\.dot line\r\nbare\r\nlf and bare\r\ncr\r\n\.\r\n/, 'the reference upstream bytes');
    } else if (observed.raw !== reference.raw || observed.codes.join() !== reference.codes.join()) {
      t.fail(`cut at ${cut} changed the outcome`, { found: observed, wanted: reference });
    }
  }
  t.pass(`${wire.length + 1} cut points gave identical upstream bytes and replies`);
});
