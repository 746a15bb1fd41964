// The floor of what Node can do as a proxy: node:http in front of an undici Pool using
// its fastest API (stream), hop-by-hop headers dropped, nothing else. Usage: floor.mjs PORT ORIGIN
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [port, origin] = [Number(process.argv[2]), process.argv[3]];
const pool = new Pool(origin, { connections: 128, pipelining: 1 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection']);

createServer((req, res) => {
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
  pool.stream(
    {
      path: req.url,
      method: req.method,
      headers,
      body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
      opaque: res,
    },
    ({ statusCode, headers: h, opaque }) => {
      for (const k of HOP) delete h[k];
      opaque.writeHead(statusCode, h);
      return opaque;
    },
    (err) => {
      if (err && !res.headersSent) {
        res.statusCode = 502;
        res.end();
      } else if (err) res.destroy();
    },
  );
}).listen(port, '127.0.0.1', () => process.send?.('ready'));
