/**
 * The cases of the schema fuzzer (mesh-fuzzers.ts): each message checker of
 * src/mesh/schema.ts with a sample the protocols build, and what its output
 * must satisfy (contracts.ts) when it accepts a mutated form of it.
 */
import * as S from '../../src/mesh/schema.js';
import { isValidPublishSubject, isValidSubscribeSubject } from '../../src/subjects/subject.js';
import * as C from './contracts.js';
import type { Sample } from './fakes.js';
import { samples, type Exchange } from './samples.js';

type Head = Record<string, unknown>;

export interface Case {
  name: string;
  sample: Sample;
  decode: (head: Head, data: Buffer) => unknown;
  check: (out: unknown, data: Buffer) => void;
}

function body(o: Record<string, unknown>, data: Buffer): void {
  const h = o.headers as Buffer | undefined;
  C.check((h?.length ?? 0) + (o.payload as Buffer).length === data.length, 'a body that is not the data');
}

function interestOut(v: unknown): void {
  C.onlyKeys(v, ['subject', 'queue'], 'interest');
  C.lineToken(v.subject, 'interest.subject');
  C.check(isValidSubscribeSubject(v.subject), 'interest.subject: a subject');
  C.check(v.subject.split('.').length <= 32, 'interest.subject: at most 32 tokens (SEC5.1)');
  if (v.queue !== undefined) C.lineToken(v.queue, 'interest.queue');
}

function routeCases(s: Sample): Case | undefined {
  const c = (decode: Case['decode'], check: Case['check']): Case => ({
    name: `route ${s.method}`,
    sample: s,
    decode,
    check,
  });
  switch (s.method) {
    case 'interest':
      return c(S.routeInterest, (o) => (o as unknown[]).forEach(interestOut));
    case 'sub':
    case 'unsub':
      return c(S.routeSub, interestOut);
    case 'msg':
      return c(S.routeMsg, (o, data) => {
        C.onlyKeys(o, ['subject', 'reply', 'queue', 'via', 'headers', 'payload'], 'msg');
        C.lineToken(o.subject, 'msg.subject');
        C.check(isValidPublishSubject(o.subject), 'msg.subject: a publish subject');
        if (o.reply !== undefined) C.lineToken(o.reply, 'msg.reply');
        if (o.queue !== undefined) C.lineToken(o.queue, 'msg.queue');
        body(o, data);
      });
    case 'hb':
      return c(
        (h) => S.memberInfo(h.info),
        (o) => C.memberInfo(o, 'hb'),
      );
    case 'dests':
      return c(S.routeDests, (o) => {
        C.onlyKeys(o, ['names', 'snapshot'], 'dests');
        (o.names as unknown[]).forEach((n) => C.destinationName(n, 'dests.names[]'));
        C.check(typeof o.snapshot === 'boolean', 'dests.snapshot');
      });
  }
  return undefined;
}

function durableCases(e: Exchange): Case[] {
  const s = e.request;
  const answer: Sample = {
    method: s.method,
    head: e.answer.head ?? {},
    data: e.answer.data ?? Buffer.alloc(0),
  };
  const c = (name: string, sample: Sample, decode: Case['decode'], check: Case['check']): Case => ({
    name,
    sample,
    decode,
    check,
  });
  switch (s.method) {
    case 'send': {
      const req = s.head.req as { destination: string; id: string };
      return [
        c('durable send', s, S.durableSend, (o) => {
          C.onlyKeys(o, ['req', 'via'], 'send');
          C.sendRequest(o.req, 'send.req');
        }),
        c(
          'durable send answer',
          answer,
          (h) => S.sendResult(h, { ...req, payload: Buffer.alloc(0) }),
          (o) => {
            C.onlyKeys(o, ['destination', 'seq', 'id', 'duplicate'], 'send answer');
            C.check(
              o.destination === req.destination && o.id === req.id && C.isInt(o.seq),
              'send answer: for the send',
            );
            C.check(typeof o.duplicate === 'boolean', 'send answer.duplicate');
          },
        ),
      ];
    }
    case 'pull':
      return [
        c('durable pull', s, S.durablePull, (o) => C.pullRequest(o, 'pull')),
        c(
          'durable pull answer',
          answer,
          (h, d) => S.pulled(h, d, 'orders'),
          (o, data) => {
            let total = 0;
            for (const d of o as Record<string, unknown>[]) {
              C.delivery(d, 'orders', 'delivery');
              total += ((d.headers as Buffer | undefined)?.length ?? 0) + (d.payload as Buffer).length;
            }
            C.check(total === data.length, 'deliveries that are not the data');
          },
        ),
      ];
    case 'settle':
      return [
        c('durable settle', s, S.durableSettle, (o) => {
          C.onlyKeys(o, ['kind', 'handle', 'delayMs'], 'settle');
          C.check(['ack', 'nak', 'wip', 'term'].includes(o.kind as string), 'settle.kind');
          C.lineToken(o.handle, 'settle.handle');
          C.check(o.delayMs === undefined || C.isInt(o.delayMs), 'settle.delayMs');
        }),
      ];
    case 'create':
      return [
        c('durable create', s, S.durableCreate, (o) => {
          C.onlyKeys(o, ['name', 'settings'], 'create');
          C.lineToken(o.name, 'create.name');
          C.settings(o.settings, 'create.settings', true);
        }),
      ];
    case 'drop':
      return [
        c('durable drop', s, S.durableDrop, (o) => {
          C.onlyKeys(o, ['destination', 'group'], 'drop');
          C.lineToken(o.destination, 'drop.destination');
          C.lineToken(o.group, 'drop.group');
        }),
      ];
    case 'list':
      return [
        c('durable list answer', answer, S.destinationList, (o) =>
          (o as unknown[]).forEach((d) => C.destinationInfo(d, 'list[]')),
        ),
      ];
  }
  return [];
}

function replicaCase(s: Sample): Case {
  if (s.method === 'msg') {
    return {
      name: 'replica msg',
      sample: s,
      decode: S.replicaMessage,
      check: (o, data) => {
        C.onlyKeys(o, ['destination', 'msg'], 'replica msg');
        C.destinationName(o.destination, 'replica msg.destination');
        C.replicatedMessage(o.msg, 'replica msg.msg');
        body(o.msg as Record<string, unknown>, data);
      },
    };
  }
  return {
    name: 'replica change',
    sample: s,
    decode: S.replicaChange,
    check: (o) => {
      C.onlyKeys(o, ['destination', 'change'], 'replica change');
      C.destinationName(o.destination, 'replica change.destination');
      C.replicatedChange(o.change, 'replica change.change');
    },
  };
}

function handoffCases(e: Exchange): Case[] {
  const s = e.request;
  const answer: Sample = {
    method: s.method,
    head: e.answer.head ?? {},
    data: e.answer.data ?? Buffer.alloc(0),
  };
  const named = (o: unknown, keys: string[]): Record<string, unknown> => {
    C.onlyKeys(o, keys, s.method);
    C.destinationName(o.d, `${s.method}.d`);
    return o;
  };
  switch (s.method) {
    case 'inventory':
      return [
        {
          name: 'handoff inventory',
          sample: s,
          decode: (h) => S.handoffInventory(h, 4000),
          check: (o) => {
            const v = named(o, ['d', 'after', 'limit']);
            C.check(C.isInt(v.after) && C.isInt(v.limit, 1, 4000), 'inventory: after and limit');
          },
        },
        {
          name: 'handoff inventory answer',
          sample: answer,
          decode: (h) => S.inventoryPage(h, 0, 4000),
          check: (o) => {
            if (o === undefined) return;
            C.onlyKeys(o, ['settings', 'lastSeq', 'groups', 'items', 'next', 'removed'], 'inv');
            C.settings(o.settings, 'inv.settings');
            C.check(o.next === undefined || C.isInt(o.next, 1), 'inv.next: after the page asked');
            C.check(Array.isArray(o.items) && o.items.length <= 4000, 'inv.items: a page');
            for (const it of o.items as Record<string, unknown>[]) {
              C.check(C.isInt(it.seq, 1) && C.isInt(it.p, 1, 10), 'inv.items[]');
              C.messageId(it.id, 'inv.items[].id');
            }
            (o.removed as unknown[]).forEach((id) => C.messageId(id, 'inv.removed[]'));
          },
        },
      ];
    case 'fetch':
      return [
        {
          name: 'handoff fetch',
          sample: s,
          decode: (h) => S.handoffFetch(h, 128),
          check: (o) => {
            const v = named(o, ['d', 'seqs']);
            C.check(
              Array.isArray(v.seqs) && v.seqs.length <= 128 && v.seqs.every((x) => C.isInt(x, 1)),
              'fetch.seqs',
            );
          },
        },
        {
          name: 'handoff fetch answer',
          sample: answer,
          decode: (h, d) => S.fetchedMessages(h, d, [1, 2, 3, 4]),
          check: (o) => {
            for (const m of o as Record<string, unknown>[]) {
              C.replicatedMessage(m, 'fetched');
              C.check([1, 2, 3, 4].includes(m.seq as number), 'fetched: a seq asked for');
            }
          },
        },
      ];
    case 'groups':
      return [
        {
          name: 'handoff groups',
          sample: s,
          decode: S.handoffGroups,
          check: (o) => {
            const v = named(o, ['d', 'settings', 'groups', 'lastSeq']);
            C.settings(v.settings, 'groups.settings');
            C.check(C.isInt(v.lastSeq) && Array.isArray(v.groups), 'groups');
          },
        },
      ];
    case 'claim':
    case 'forget':
      return [
        {
          name: `handoff ${s.method}`,
          sample: s,
          decode: S.handoffName,
          check: (o) => C.destinationName(o, `${s.method}.d`),
        },
      ];
  }
  return [];
}

export async function schemaCases(): Promise<Case[]> {
  const s = await samples();
  return [
    ...s.route.flatMap((x) => routeCases(x) ?? []),
    ...s.durable.flatMap(durableCases),
    ...s.replica.map(replicaCase),
    ...s.handoff.flatMap(handoffCases),
    {
      name: 'heartbeat',
      sample: { method: 'hb', head: s.heartbeat as unknown as Head, data: Buffer.alloc(0) },
      decode: S.memberInfo,
      check: (o) => C.memberInfo(o, 'heartbeat'),
    },
  ];
}
