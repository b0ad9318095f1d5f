/** `swarmmq sub`: subscribe and print what arrives (CLIENT.md sections 4 and 5). */
import type { Command } from 'commander';
import type { ClientError } from '../sdk/wire/errors.js';
import { checkSubject, checkToken } from '../sdk/wire/text.js';
import type { Msg } from '../sdk/wire/types.js';
import {
  EXIT_CODES_HELP,
  answerSignal,
  intArg,
  openClient,
  runAction,
  withConnectionOptions,
  type ConnectionFlags,
} from './connect-flags.js';
import { formatMsg, msgJson } from './format.js';

/** Bounded like UNSUB's max; 0 means until Ctrl-C. */
const MAX_SUB_COUNT = 1_000_000_000;

interface SubFlags extends ConnectionFlags {
  queue?: string;
  count?: number;
  json?: boolean;
}

export function registerSub(program: Command): void {
  const cmd = program
    .command('sub')
    .description('subscribe to a subject and print each message until --count or Ctrl-C')
    .argument('<subject>', 'subject to subscribe to; * matches one token, a last > the rest')
    .option('-q, --queue <group>', 'join a queue group: each message goes to one member of it')
    .option('-c, --count <n>', 'exit 0 after n messages', intArg(1, MAX_SUB_COUNT))
    .option('--json', 'one JSON object per message: subject, reply, headers, payload');
  withConnectionOptions(cmd)
    .addHelpText(
      'after',
      `
Examples:
  swarmmq sub 'orders.>'
  swarmmq sub orders.new --queue workers --count 1
  swarmmq sub 'metrics.*' --json | jq .payload

Says "subscribed to <subject>" on stderr once the node has the subscription, then
prints each message on stdout: "[#n] <subject> [reply=<r>] <size>", its headers
indented, and its payload (text, or base64 when not UTF-8). Ctrl-C exits 0.
${EXIT_CODES_HELP}`,
    )
    .action(runAction(sub));
}

async function sub(subject: string, flags: SubFlags): Promise<void> {
  checkSubject('subject', subject, true);
  if (flags.queue !== undefined) checkToken('queue group', flags.queue);
  const client = await openClient(flags, 'swarmmq sub');
  let n = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const show = (m: Msg): void => {
    n++;
    process.stdout.write(flags.json === true ? `${msgJson(m)}\n` : formatMsg(n, m));
    if (n === flags.count) finish();
  };
  // once: a second Ctrl-C while closing ends the process the usual way.
  process.once('SIGINT', finish);
  process.once('SIGTERM', finish);
  // A closed pipe (sub ... | head) ends the subscription, not with a crash.
  process.stdout.once('error', finish);
  try {
    // C4.6: with --count the node itself stops after n, so no extra message is in flight.
    client.subscribe(subject, show, {
      ...(flags.queue === undefined ? {} : { queue: flags.queue }),
      ...(flags.count === undefined ? {} : { max: flags.count }),
    });
    await client.flush(answerSignal(flags)); // a refused SUB is its -ERR (SEC3.3, C4.2)
    const queue = flags.queue === undefined ? '' : ` in queue group ${flags.queue}`;
    process.stderr.write(`subscribed to ${subject}${queue}\n`);
    const lost = await Promise.race([done.then(() => undefined), client.closed]);
    if (lost !== undefined) throw lost as ClientError;
  } finally {
    process.off('SIGINT', finish);
    process.off('SIGTERM', finish);
    process.stdout.off('error', finish);
    await client.close();
  }
}
