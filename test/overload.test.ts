/**
 * The process overload guard: when the gateway's event loop has been held up past the
 * threshold, new requests are shed at once with an explained 503 and Retry-After, and
 * admitted again once the loop recovers.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fetchRaw, httpUpstream, minimalConfig, startGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('a held-up event loop sheds new requests with 503 connection_limit_reached, then recovers', async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startGateway(minimalConfig([up.address], { top: { server: { maxEventLoopDelay: '200ms' } } }));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  assert.equal((await fetchRaw(`${gw.url}/x`)).status, 200);
  await new Promise((r) => setTimeout(r, 150));
  // The gateway runs in this process: hold its event loop up for 500 ms. The guard sheds for the
  // one check interval (100 ms) after it notices; on a loaded machine the request may miss that
  // window, so the hold-up is repeated (at most three times) until a request meets it.
  const held = (): number => gw.logs.filter((l) => l.msg === 'event loop held up: shedding new requests').length;
  let shed = { status: 0, headers: {} as Record<string, string | string[] | undefined>, ms: 0 };
  for (let round = 0; round < 3 && shed.status !== 503; round++) {
    const before = held();
    const until = Date.now() + 500;
    while (Date.now() < until) {
      /* busy */
    }
    const noticed = Date.now() + 1000;
    while (held() === before && Date.now() < noticed) await new Promise((r) => setTimeout(r, 2));
    shed = await fetchRaw(`${gw.url}/x`);
    if (shed.status !== 503) await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(shed.status, 503);
  assert.equal(shed.headers['proxy-status'], 'gangway; error=connection_limit_reached; details="gateway overloaded"');
  assert.equal(shed.headers['retry-after'], '1');
  // At once means without going upstream: well under the upstream's own answer time would do,
  // but nothing upstream is slow here, so bound it by the guard's check interval instead.
  assert.ok(shed.ms < 100, `shed at once (${shed.ms.toFixed(1)} ms)`);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await fetchRaw(`${gw.url}/x`)).status, 200, 'admitted again once the loop recovered');
  assert.ok(gw.logs.some((l) => l.msg === 'event loop held up: shedding new requests'));
});
