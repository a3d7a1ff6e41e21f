/**
 * Client-side OpenTelemetry tracing, outside the browser SDK's weight:
 * `connect(url, { tracing: clientTracing(otel) })`.
 *
 * @module volley/client/tracing
 */
export * from '../../client/tracing.ts';
