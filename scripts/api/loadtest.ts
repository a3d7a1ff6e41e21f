/**
 * What a `volley-loadtest` bot script imports: `export default defineBots({ … })`.
 *
 * @module volley/loadtest
 */
export * from '../../loadtest/index.ts';
