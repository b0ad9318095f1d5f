/**
 * Limits of the JSON monitoring endpoints (protocol/MONITORING.md section 1):
 * every list is paged, and every page, parameter and listing has a ceiling,
 * so one request costs a bounded amount of work and answer however large the
 * node's state grows.
 */

/** Entries on a page when `limit` is not given (connections, subscriptions, destinations), MON1.4. */
export const DEFAULT_PAGE_LIMIT = 100;
/** Most entries one page may ask for: bounds the work and the size of one answer (MON1.4). */
export const MAX_PAGE_LIMIT = 1000;
/** Largest `offset`: reaching a page walks every entry before it (the subject index has no random access). */
export const MAX_PAGE_OFFSET = 1_000_000;
/** Longest text parameter (`dest`, `test`): destination names and subjects are far shorter. */
export const MAX_PARAM_CHARS = 1024;
/**
 * Subjects one /connz answer lists over all its connections (`subs=1`):
 * 1000 connections of 4096 subscriptions each would be a 200 MB answer.
 * Past it a connection's list is cut and says so (MON4.4).
 */
export const MAX_LISTED_SUBJECTS = 10_000;
/** Departed members /meshz lists, most recent first (MON6.2). */
export const MAX_DEPARTED_LISTED = 100;
/**
 * Destinations whose oldest message /destz looks up at once: each takes up
 * to ten short store reads, one after another (MON7.3). Two at once leave
 * libuv's other threads to the store's group commits, so a scrape does not
 * hold up +STORED.
 */
export const OLDEST_LOOKUPS_AT_ONCE = 2;
