// http-proxy (node-http-proxy) with a keep-alive agent. Usage: http-proxy.cjs PORT ORIGIN
const http = require('node:http');
const httpProxy = require('http-proxy');

const [port, origin] = [Number(process.argv[2]), process.argv[3]];
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const proxy = httpProxy.createProxyServer({ target: origin, agent });
proxy.on('error', (_err, _req, res) => {
  if (!res.headersSent) {
    res.statusCode = 502;
  }
  res.end();
});
http.createServer((req, res) => proxy.web(req, res)).listen(port, '127.0.0.1', () => process.send?.('ready'));
