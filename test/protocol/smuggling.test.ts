// SMTP smuggling (SEC Consult 2023; CVE-2023-51764/51765/51766) through the proxy: no bare-LF or
// bare-CR variant ends the data, and the upstream receives only canonical, re-stuffed CRLF lines.
import t from 'tap';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';

const VARIANTS = ['\n.\n', '\r.\r', '\n.\r\n', '\r\n.\n', '\r.\r\n', '\r\n.\r', '\r\n\0.\r\n', '\n.\r', '\r\n.\r\r\n'];

const NON_CANONICAL = /(^|[^\r])\n|\r(?!\n)/;

t.test('every smuggling variant stays inside one message', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  for (const variant of VARIANTS) {
    const client = await RawClient.openTransaction(proxy.port);
    const before = upstream.payloads.length;
    client.send(`Subject: smuggle\r\n\r\nhello${variant}MAIL FROM:<ceo@example.org>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nFrom: ceo@example.org\r\n\r\nspoofed\r\n.\r\nQUIT\r\n`);
    await client.waitForReplies(7);
    t.same(client.codes().slice(5), [250, 221], `${JSON.stringify(variant)}: one final reply, then QUIT`);
    const received = upstream.payloads.slice(before);
    t.equal(received.length, 1, `${JSON.stringify(variant)}: exactly one message upstream`);
    const wire = received[0]?.toString('latin1') ?? '';
    t.match(wire, /MAIL FROM:<ceo@example.org>/, 'the smuggled commands are message text');
    t.notOk(NON_CANONICAL.test(wire), 'the upstream received only CRLF line endings');
    t.notOk(/\r\n\0*\.\r\n/.test(`\r\n${wire}`), 'no line the upstream could read as an end of data');
    const sessionCommands = upstream.sessions.at(-1)?.commands ?? [];
    t.equal(sessionCommands.filter((command) => command.startsWith('MAIL')).length, 1, 'the upstream saw one MAIL command');
    client.close();
  }
});
