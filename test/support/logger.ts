import pino from 'pino';

/** Quiet by default; PAGELIFE_TEST_LOG=debug shows server logs while debugging a test. */
export const testLog = pino({ level: process.env.PAGELIFE_TEST_LOG ?? 'silent' });
