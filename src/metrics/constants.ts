/**
 * The numbers behind the node's metrics (protocol/METRICS.md): series caps,
 * histogram buckets and the memory budget the alert rules divide by.
 */

/**
 * Destinations that get their own depth and bytes series (MT2.3): the
 * largest by depth. A node may hold 10,000 destinations; a series each
 * would swamp Prometheus, and the alert (depth > 10,000) only needs the big
 * ones.
 */
export const MAX_DESTINATION_SERIES = 100;

/**
 * Consumer-group lag series over those destinations (MT2.3): the largest
 * lags. 100 destinations x 64 groups would be 6,400 series.
 */
export const MAX_GROUP_SERIES = 500;

/**
 * Resident memory one node is meant to stay under (the architecture's
 * "under 512 MB per node"); exported as a gauge so the alert rule divides
 * by it instead of repeating the number (MT4.1).
 */
export const MEMORY_BUDGET_BYTES = 512 * 1024 * 1024;

/**
 * Send-to-confirm: an fdatasync (about 1-10 ms on a disk) plus replicas in a
 * cluster. 0.05 is a bound so the p95 > 50 ms alert reads an exact bucket
 * edge, not an interpolation across one.
 */
export const CONFIRM_BUCKETS_SECONDS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15,
];

/**
 * Stored to handed to a consumer: milliseconds when consumers keep up, hours
 * when they do not (a backlog). 0.05 is a bound for the alert.
 */
export const DELIVERY_BUCKETS_SECONDS: readonly number[] = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60, 300, 900, 3600,
];

/** Delivery to ACK/NAK/TERM: a consumer's processing time, up to its ack timeout (5 s by default). */
export const SETTLE_BUCKETS_SECONDS: readonly number[] = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];

/** A mesh round trip: sub-millisecond on a LAN, up to the 15 s request timeout. */
export const MESH_BUCKETS_SECONDS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15,
];
