/** Typed errors of the replay: a fixture that does not parse, and a step that cannot run. */

/** A fixture rejected before it runs; `where` names the step and field (e.g. `steps[3].client`). */
export class FixtureError extends Error {
  override readonly name = 'FixtureError';
  constructor(
    readonly file: string,
    readonly where: string,
    readonly why: string,
  ) {
    super(`${file}: ${where}: ${why}`);
  }
}

/** A step that the replay could not carry out (not an expectation that failed: that is a verdict). */
export class ReplayStepError extends Error {
  override readonly name = 'ReplayStepError';
  constructor(
    readonly fixture: string,
    readonly step: number,
    readonly op: string,
    why: string,
  ) {
    super(`${fixture}: steps[${step}] (${op}): ${why}`);
  }
}

/** The replay command line does not make sense (no fixture, an unknown mode…). */
export class ReplayUsageError extends Error {
  override readonly name = 'ReplayUsageError';
}

/** A --pcap or --trace file that could not be written. */
export class ReplayOutputError extends Error {
  override readonly name = 'ReplayOutputError';
  constructor(
    readonly file: string,
    why: string,
  ) {
    super(`${file}: ${why}`);
  }
}
