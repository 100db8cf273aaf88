// How an SMTP session's upstream leg ends (src/session/smtp/closing.ts), for every way a close is
// named and every state of the leg: QUIT once and only between commands, FIN after a relayed QUIT;
// otherwise FIN when polite, a destroy when not. No sockets: the decision is a pure function.
import t from 'tap';
import { upstreamEnd, type CloseHow, type UpstreamLeg } from '../../src/session/smtp/closing.js';

const HOWS: CloseHow[] = ['polite', 'reply-now', 'reply-in-turn', 'silent'];

const legs = (): UpstreamLeg[] =>
  [false, true].flatMap((alive) => [false, true].flatMap((quitSent) => [false, true].map((inTransfer) => ({ alive, quitSent, inTransfer }))));

t.test('an upstream waiting for a command is told QUIT, however the session ends', async (t) => {
  for (const how of HOWS) t.equal(upstreamEnd(how, { alive: true, quitSent: false, inTransfer: false }), 'quit', how);
});

t.test('no QUIT after DATA was sent: it would be message text; the leg is destroyed (no final dot, nothing delivered)', async (t) => {
  for (const how of HOWS) t.equal(upstreamEnd(how, { alive: true, quitSent: false, inTransfer: true }), how === 'polite' ? 'fin' : 'destroy', how);
});

t.test('no second QUIT after the downstream QUIT was relayed: a FIN, however the session ends', async (t) => {
  for (const how of HOWS) t.equal(upstreamEnd(how, { alive: true, quitSent: true, inTransfer: false }), 'fin', how);
});

t.test('a lost upstream gets no words: FIN when the session ends politely, a destroy otherwise', async (t) => {
  for (const leg of legs()) {
    if (leg.alive) continue;
    for (const how of HOWS) t.equal(upstreamEnd(how, leg), how === 'polite' ? 'fin' : 'destroy', `${how} ${JSON.stringify(leg)}`);
  }
});

t.test('QUIT is chosen exactly when the leg is alive, between commands, and not yet quitting', async (t) => {
  for (const leg of legs()) {
    for (const how of HOWS) t.equal(upstreamEnd(how, leg) === 'quit', leg.alive && !leg.quitSent && !leg.inTransfer, `${how} ${JSON.stringify(leg)}`);
  }
});
