/**
 * The subject index: a trie of tokens with separate slots for '*' and '>',
 * and a bounded cache of match results (protocol/CLIENT.md section 4).
 * Generic over what is subscribed, so the mesh can store remote interest in
 * the same structure as local subscriptions.
 *
 * The cache is keyed by subject and stamped with a generation; every insert
 * or remove bumps the generation, which invalidates all cached results at
 * once without walking them.
 */

import { hasEmptyToken } from './subject.js';

/** What the sublist needs to know about an entry. */
export interface SubjectEntry {
  readonly subject: string;
  /** Queue group name, or undefined for a plain subscription. */
  readonly queue: string | undefined;
}

export interface MatchResult<T> {
  /** Plain subscriptions: each gets every message. */
  readonly plain: readonly T[];
  /** Queue groups: each inner array is one group; one member gets each message. */
  readonly groups: readonly (readonly T[])[];
}

interface Level<T> {
  literal: Map<string, Node<T>>;
  star: Node<T> | null;
  tail: Node<T> | null;
}

/** Sets are made on first use: most nodes are inner tokens that hold no entry (SECURITY.md SEC5.1). */
interface Node<T> {
  next: Level<T> | null;
  plain: Set<T> | null;
  groups: Map<string, Set<T>> | null;
}

interface CacheEntry<T> {
  generation: number;
  result: MatchResult<T>;
}

const EMPTY_RESULT: MatchResult<never> = Object.freeze({ plain: [], groups: [] });

export class Sublist<T extends SubjectEntry> {
  private readonly root: Level<T> = newLevel();
  private readonly cache = new Map<string, CacheEntry<T>>();
  private generation = 0;
  private count = 0;
  /** Lookups so far, and how many the cache answered (/subsz; two increments per publish). */
  matches = 0;
  cacheHits = 0;

  /** @param cacheEntries most subjects whose result is kept; 0 turns the cache off. */
  constructor(private readonly cacheEntries: number) {}

  get size(): number {
    return this.count;
  }

  insert(entry: T): void {
    const tokens = entry.subject.split('.');
    let level = this.root;
    let node: Node<T> | null = null;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t === '*') {
        node = level.star ??= newNode();
      } else if (t === '>') {
        node = level.tail ??= newNode();
      } else {
        node = level.literal.get(t) ?? null;
        if (node === null) {
          node = newNode();
          level.literal.set(t, node);
        }
      }
      if (i < tokens.length - 1) level = node.next ??= newLevel();
    }
    const n = node!;
    if (entry.queue === undefined) {
      (n.plain ??= new Set()).add(entry);
    } else {
      const groups = (n.groups ??= new Map());
      let group = groups.get(entry.queue);
      if (group === undefined) {
        group = new Set();
        groups.set(entry.queue, group);
      }
      group.add(entry);
    }
    this.count++;
    this.generation++;
  }

  /** Removes an entry; returns false if it was not there. Prunes empty nodes. */
  remove(entry: T): boolean {
    const tokens = entry.subject.split('.');
    const path: { level: Level<T>; token: string; node: Node<T> }[] = [];
    let level: Level<T> | null = this.root;
    for (const t of tokens) {
      if (level === null) return false;
      const node: Node<T> | null =
        t === '*' ? level.star : t === '>' ? level.tail : (level.literal.get(t) ?? null);
      if (node === null) return false;
      path.push({ level, token: t, node });
      level = node.next;
    }
    const last = path[path.length - 1]!.node;
    let removed: boolean;
    if (entry.queue === undefined) {
      removed = last.plain !== null && last.plain.delete(entry);
      if (last.plain?.size === 0) last.plain = null;
    } else {
      const group = last.groups?.get(entry.queue);
      removed = group !== undefined && group.delete(entry);
      if (group !== undefined && group.size === 0) last.groups!.delete(entry.queue);
      if (last.groups?.size === 0) last.groups = null;
    }
    if (!removed) return false;
    for (let i = path.length - 1; i >= 0; i--) {
      const { level: lv, token, node } = path[i]!;
      if (node.plain !== null || node.groups !== null || (node.next !== null && !isEmptyLevel(node.next)))
        break;
      if (token === '*') lv.star = null;
      else if (token === '>') lv.tail = null;
      else lv.literal.delete(token);
    }
    this.count--;
    this.generation++;
    return true;
  }

  /** Everything that matches a literal subject. The result is shared: do not mutate it. */
  match(subject: string): MatchResult<T> {
    this.matches++;
    if (this.cacheEntries > 0) {
      const hit = this.cache.get(subject);
      if (hit !== undefined && hit.generation === this.generation) {
        this.cacheHits++;
        return hit.result;
      }
    }
    const plain: T[] = [];
    const groups = new Map<string, T[]>();
    // C5.7: a subject with an empty token matches nothing (checked here, so only on a cache miss).
    if (!hasEmptyToken(subject)) collect(this.root, subject.split('.'), 0, plain, groups);
    const result: MatchResult<T> =
      plain.length === 0 && groups.size === 0 ? EMPTY_RESULT : { plain, groups: [...groups.values()] };
    if (this.cacheEntries > 0) {
      if (this.cache.size >= this.cacheEntries) {
        // Evict the oldest entry (Map keeps insertion order).
        const oldest = this.cache.keys().next().value as string;
        this.cache.delete(oldest);
      }
      this.cache.set(subject, { generation: this.generation, result });
    }
    return result;
  }

  /** Cached subjects (for tests and monitoring). */
  get cacheSize(): number {
    return this.cache.size;
  }

  /** Most subjects the cache keeps (0: off). */
  get cacheMax(): number {
    return this.cacheEntries;
  }

  /**
   * Every entry, walking the trie depth-first (for /subsz listings). Lazy, so
   * a page near the start costs only what it reads; do not change the index
   * while iterating.
   */
  *entries(): Generator<T> {
    const stack: Level<T>[] = [this.root];
    while (stack.length > 0) {
      const level = stack.pop()!;
      const nodes = [...level.literal.values(), level.star, level.tail];
      for (const node of nodes) {
        if (node === null) continue;
        if (node.plain !== null) yield* node.plain;
        if (node.groups !== null) for (const g of node.groups.values()) yield* g;
        if (node.next !== null) stack.push(node.next);
      }
    }
  }
}

function collect<T>(
  level: Level<T>,
  tokens: string[],
  i: number,
  plain: T[],
  groups: Map<string, T[]>,
): void {
  const token = tokens[i]!;
  const last = i === tokens.length - 1;
  if (level.tail !== null) addAll(level.tail, plain, groups); // '>' matches this token and all after it
  if (level.star !== null) step(level.star, tokens, i, last, plain, groups);
  const lit = level.literal.get(token);
  if (lit !== undefined) step(lit, tokens, i, last, plain, groups);
}

function step<T>(
  node: Node<T>,
  tokens: string[],
  i: number,
  last: boolean,
  plain: T[],
  groups: Map<string, T[]>,
): void {
  if (last) addAll(node, plain, groups);
  else if (node.next !== null) collect(node.next, tokens, i + 1, plain, groups);
}

function addAll<T>(node: Node<T>, plain: T[], groups: Map<string, T[]>): void {
  if (node.plain !== null) for (const e of node.plain) plain.push(e);
  if (node.groups === null) return;
  for (const [name, members] of node.groups) {
    let g = groups.get(name);
    if (g === undefined) {
      g = [];
      groups.set(name, g);
    }
    for (const e of members) g.push(e);
  }
}

function newLevel<T>(): Level<T> {
  return { literal: new Map(), star: null, tail: null };
}

function newNode<T>(): Node<T> {
  return { next: null, plain: null, groups: null };
}

function isEmptyLevel<T>(level: Level<T>): boolean {
  return level.literal.size === 0 && level.star === null && level.tail === null;
}
