// @fastify/http-proxy with its defaults (undici underneath). Usage: fastify-proxy.mjs PORT ORIGIN
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const [port, origin] = [Number(process.argv[2]), process.argv[3]];
const app = Fastify({ logger: false });
await app.register(proxy, { upstream: origin });
await app.listen({ port, host: '127.0.0.1' });
process.send?.('ready');
