// limits.max_unknown_commands, shared by both dialects: the count reaches the limit on the
// limit-th unknown command, not before, and stays reached.
import t from 'tap';
import { UnknownCommands } from '../../src/session/unknown-commands.js';

t.test('the limit-th unknown command reaches the limit', async (t) => {
  const unknown = new UnknownCommands(3);
  t.equal(unknown.record(), false, 'first');
  t.equal(unknown.record(), false, 'second');
  t.equal(unknown.record(), true, 'third reaches a limit of 3');
  t.equal(unknown.record(), true, 'and it stays reached');
});

t.test('a limit of 1 closes on the first unknown command', async (t) => {
  t.equal(new UnknownCommands(1).record(), true);
});

t.test('each session counts on its own', async (t) => {
  const first = new UnknownCommands(2);
  const second = new UnknownCommands(2);
  first.record();
  t.equal(second.record(), false, 'the other session has seen one');
  t.equal(first.record(), true);
});
