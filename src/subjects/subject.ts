/**
 * Subject syntax (protocol/CLIENT.md section 4). A subject is tokens joined
 * by '.'; a token is non-empty. In a subscription a token that is exactly
 * '*' matches one token, and '>' as the last token matches one or more.
 * As in nats-server 2.9, '*' or '>' inside a longer token is literal.
 */

const DOT = 46;

/** C4.1/C4.2: valid as a subscription subject (wildcards allowed). */
export function isValidSubscribeSubject(subject: string): boolean {
  const n = subject.length;
  if (n === 0) return false;
  let start = 0;
  for (let i = 0; i <= n; i++) {
    if (i === n || subject.charCodeAt(i) === DOT) {
      const len = i - start;
      if (len === 0) return false;
      // '>' must be the last token.
      if (len === 1 && subject.charCodeAt(start) === 62 && i !== n) return false;
      start = i + 1;
    }
  }
  return true;
}

/** C3.3: valid as a publish subject: no empty token and no wildcard token. */
export function isValidPublishSubject(subject: string): boolean {
  const n = subject.length;
  if (n === 0) return false;
  let start = 0;
  for (let i = 0; i <= n; i++) {
    if (i === n || subject.charCodeAt(i) === DOT) {
      const len = i - start;
      if (len === 0) return false;
      if (len === 1) {
        const c = subject.charCodeAt(start);
        if (c === 42 || c === 62) return false;
      }
      start = i + 1;
    }
  }
  return true;
}

/** True when a subscription subject contains a wildcard token. */
export function hasWildcard(subject: string): boolean {
  const tokens = subject.split('.');
  return tokens.includes('*') || tokens.includes('>');
}

/** C5.7: a subject with an empty token ('a..b', '.a', 'a.', '') matches nothing. */
export function hasEmptyToken(subject: string): boolean {
  const n = subject.length;
  return (
    n === 0 || subject.charCodeAt(0) === DOT || subject.charCodeAt(n - 1) === DOT || subject.includes('..')
  );
}

/** Tokens in a subject: one more than its dots. */
export function tokenCount(subject: string): number {
  let n = 1;
  for (let i = 0; i < subject.length; i++) if (subject.charCodeAt(i) === DOT) n++;
  return n;
}
