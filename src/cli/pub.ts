/** `swarmmq pub`: publish core messages (CLIENT.md section 3), or make one request (C5.6). */
import type { Command } from 'commander';
import { checkSubject, encodeHeaders } from '../sdk/wire/text.js';
import {
  EXIT_CODES_HELP,
  UsageError,
  answerSignal,
  collect,
  intArg,
  openClient,
  readPayload,
  runAction,
  withConnectionOptions,
  type ConnectionFlags,
} from './connect-flags.js';
import { formatMsg, headerFlags, msgJson } from './format.js';

/** A CLI loop, not a load generator (that is `swarmmq bench`). */
const MAX_PUB_COUNT = 1_000_000;

interface PubFlags extends ConnectionFlags {
  count: number;
  header?: string[];
  reply?: string;
  request?: boolean;
  json?: boolean;
}

export function registerPub(program: Command): void {
  const cmd = program
    .command('pub')
    .description('publish a message to a subject (delivered to current subscribers; not stored)')
    .argument('<subject>', 'subject to publish to')
    .argument('[payload]', 'the message body; read from stdin when omitted')
    .option('-c, --count <n>', `publish it n times (1-${MAX_PUB_COUNT})`, intArg(1, MAX_PUB_COUNT), 1)
    .option('-H, --header <name=value>', 'add a header (repeatable)', collect)
    .option('--reply <subject>', 'reply subject for subscribers to answer on')
    .option('-r, --request', 'wait for one reply and print it (exit 3 if none within --timeout)')
    .option('--json', 'with --request: print the reply as one JSON object');
  withConnectionOptions(cmd)
    .addHelpText(
      'after',
      `
Examples:
  swarmmq pub greet.joe hello
  swarmmq pub orders.new '{"id":1}' -H Trace-Id=42 --count 10
  date | swarmmq pub clock.tick
  swarmmq pub svc.time now --request --timeout 2s
  swarmmq pub -s tls://node1:4222 --tls-ca ca.pem --token "$KEY" orders.new hi

Prints "published <n> message(s) to <subject>" once the node has handled them
(a refused publish is its -ERR). With --request it prints the reply instead.
${EXIT_CODES_HELP}`,
    )
    .action(runAction(pub));
}

async function pub(subject: string, payloadArg: string | undefined, flags: PubFlags): Promise<void> {
  if (flags.request === true && (flags.reply !== undefined || flags.count !== 1)) {
    throw new UsageError(
      '--request makes its own reply subject and sends one message: no --reply or --count',
    );
  }
  if (flags.json === true && flags.request !== true) throw new UsageError('--json goes with --request');
  checkSubject('subject', subject, false);
  if (flags.reply !== undefined) checkSubject('reply subject', flags.reply, false);
  const fields = headerFlags(flags.header ?? []);
  const headers = fields.length === 0 ? undefined : encodeHeaders(fields);
  const payload = await readPayload(payloadArg);
  const client = await openClient(flags, 'swarmmq pub');
  try {
    if (flags.request === true) {
      const reply = await client.request(subject, payload, {
        ...(headers === undefined ? {} : { headers }),
        signal: answerSignal(flags),
      });
      process.stdout.write(flags.json === true ? `${msgJson(reply)}\n` : formatMsg(1, reply));
      return;
    }
    const opts = {
      ...(headers === undefined ? {} : { headers }),
      ...(flags.reply === undefined ? {} : { reply: flags.reply }),
    };
    for (let i = 0; i < flags.count; i++) {
      if (!client.publish(subject, payload, opts)) await client.drain(answerSignal(flags));
    }
    await client.flush(answerSignal(flags));
    const n = flags.count;
    process.stdout.write(`published ${n} message${n === 1 ? '' : 's'} to ${subject}\n`);
  } finally {
    await client.close();
  }
}
