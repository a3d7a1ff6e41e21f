/**
 * The isomorphic client (browsers and Node, standard WebSocket API): `connect(url, options)`
 * or `new VolleyClient(url, options)`. `volley/browser`, the prebuilt bundle for a plain
 * `<script type="module">`, exports the same.
 *
 * @module volley/client
 */
export * from '../../client/index.ts';
