/**
 * Every structure the telemetry keeps is bounded by one of these, so a busy or lossy server can
 * run for ever with a dashboard attached and its telemetry memory stays flat.
 */
export interface TelemetryLimits {
  /** Replies pinned right now that are tracked; past it the oldest is closed as `evicted`. */
  maxOpenLifetimes: number;
  /** Released replies kept for the timeline, trace and page detail (a ring). */
  maxRecentLifetimes: number;
  /** Netstack events recorded on one lifetime; later ones are only counted. */
  maxMarksPerLifetime: number;
  /** skbs (originals, clones, copies) listed as holding one reply's pages. */
  maxHoldersPerLifetime: number;
  /** Page frames recorded for one reply (a 1 MiB READ spans 256). */
  maxPfnsPerLifetime: number;
  /** Destructors seen in netstack events before their reply's pin was announced (oldest forgotten first). */
  maxPendingDestructors: number;
  /** skb → destructors links kept to attribute holds and clone lifetimes (oldest forgotten first). */
  maxTrackedSkbs: number;
  /** Transmitted sequence ranges kept per connection to attribute drops, stale retransmits and ACKs. */
  maxSegmentsPerConn: number;
  /** Connections whose sequence ranges are tracked (oldest forgotten first). */
  maxTrackedConns: number;
  /** Distinct (program, procedure) call series; the rest count under proc="other". */
  maxProcedureSeries: number;
  /** Connections included in a snapshot or a delta. */
  maxConnectionsShown: number;
  /** Lifetimes carried by one delta; more are counted as omitted (the client then refetches). */
  maxLifetimesPerDelta: number;
  /** Changed grid cells sent as a list; more and the delta carries the whole grid. */
  maxCellChangesPerDelta: number;
  /**
   * Lifetimes in the dashboard stream's snapshot, newest pins first: what its timeline and
   * tooltips draw, not the whole log (/api/state has that). Under load the whole log was
   * megabytes to serialize and parse before the page could go live.
   */
  maxStreamSnapshotLifetimes: number;
  /** Older lifetimes showing a stale retransmit added to that snapshot, so the bug stays in view. */
  maxStreamSnapshotStaleLifetimes: number;
}

export const DEFAULT_TELEMETRY_LIMITS: Readonly<TelemetryLimits> = Object.freeze({
  maxOpenLifetimes: 4096,
  maxRecentLifetimes: 512,
  maxMarksPerLifetime: 64,
  maxHoldersPerLifetime: 32,
  maxPfnsPerLifetime: 256,
  maxPendingDestructors: 256,
  maxTrackedSkbs: 8192,
  maxSegmentsPerConn: 1024,
  maxTrackedConns: 256,
  maxProcedureSeries: 128,
  maxConnectionsShown: 64,
  maxLifetimesPerDelta: 256,
  maxCellChangesPerDelta: 2048,
  maxStreamSnapshotLifetimes: 64,
  maxStreamSnapshotStaleLifetimes: 16,
});

/** Upper bounds (ms) of the pin-duration histogram's buckets; +Inf is implied. */
export const PIN_DURATION_BUCKETS_MS: readonly number[] = Object.freeze([0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000]);
