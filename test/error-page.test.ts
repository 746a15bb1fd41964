/**
 * The error page people see in a browser: what happened in their language, whose side it
 * is on, steps for this kind of failure only, when to come back (and a page that retries by
 * itself, with a no-JavaScript fallback), the reference to quote — and the operator's brand,
 * words or whole template; and the plain text a terminal gets, which says when to try again.
 * Counts and waits are in words, in the reader's language and its plural forms. Rendering in a
 * real browser is in test/browser.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CATALOGUES, text } from '../src/explain/catalogue.js';
import { humanDuration } from '../src/explain/duration.js';
import { validateConfig } from '../src/index.js';
import { closedPort, fetchRaw, httpUpstream, minimalConfig, rawExchange, startGateway } from './support/harness.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

async function refusingGateway(extra: Record<string, unknown> = {}) {
  const port = await closedPort();
  const gw = await startGateway(minimalConfig([`127.0.0.1:${port}`], extra));
  cleanups.push(() => gw.close());
  return gw;
}

test('a gateway-side failure says whose side it is on, that refreshing or DNS changes will not help, and retries by itself', async () => {
  const gw = await refusingGateway({ top: { errors: { statusPage: 'https://status.example.com/' } } });
  const res = await fetchRaw(`${gw.url}/track`, { headers: { accept: BROWSER } });
  const html = res.body.toString();
  assert.equal(res.status, 502);
  assert.equal(res.headers['content-language'], 'en');
  assert.match(html, /^<!doctype html>\n<html lang="en">/);
  assert.match(html, /<h1>The music service is not answering right now<\/h1>/);
  assert.match(html, /The problem is on our side/);
  assert.match(html, /refreshing, clearing caches, changing DNS or turning off a VPN will not help/);
  assert.match(
    html,
    /<noscript><meta http-equiv="refresh" content="5"><\/noscript>/,
    'without JavaScript the page refreshes after Retry-After',
  );
  assert.match(html, /This page checks by itself, often at first and then at least once a minute, and reloads/);
  assert.match(html, /Next check in <span id="count">5 seconds<\/span>\./);
  assert.match(html, new RegExp(`<code>${res.headers['x-request-id']}</code>`));
  assert.match(html, /<a href="https:\/\/status\.example\.com\/">Service status →<\/a>/);
  // Self-contained: nothing is loaded from anywhere (the status link is a link, not a load).
  assert.doesNotMatch(html, /<(script|img|link|iframe)[^>]+(src|href)="?https?:/);
});

test("the page speaks the reader's language from Accept-Language, German here, and problem+json too", async () => {
  const gw = await refusingGateway();
  const res = await fetchRaw(`${gw.url}/track`, {
    headers: { accept: BROWSER, 'accept-language': 'fr-CH, de-AT;q=0.9, en;q=0.5' },
  });
  assert.equal(res.headers['content-language'], 'de');
  const html = res.body.toString();
  assert.match(html, /<html lang="de">/);
  assert.match(html, /<h1>Der Dienst music antwortet gerade nicht<\/h1>/);
  assert.match(html, /Das Problem liegt bei uns/);
  assert.match(html, /VPN ausschalten hilft nicht/);
  const problem = JSON.parse(
    (
      await fetchRaw(`${gw.url}/track`, { headers: { accept: 'application/json', 'accept-language': 'de' } })
    ).body.toString(),
  ) as { title: string; advice: string[] };
  assert.equal(problem.title, 'Dienst hat die Verbindung abgelehnt');
  assert.equal(problem.advice.length, 3);
});

test("a client-side failure gives that failure's own steps, and a POST is not retried by the page", async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const gw = await startGateway(minimalConfig([up.address], { route: { rateLimit: { requests: 1, window: '10s' } } }));
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  await fetchRaw(`${gw.url}/x`);
  const limited = (await fetchRaw(`${gw.url}/x`, { method: 'POST', headers: { accept: BROWSER } })).body.toString();
  assert.match(limited, /The problem may be on your side/);
  assert.match(limited, /<h1>Too many requests<\/h1>/);
  assert.match(limited, /continue at a slower pace/);
  assert.doesNotMatch(limited, /refreshing, clearing caches/);
  assert.doesNotMatch(limited, /<script>/, 'a POST is never repeated by the page');
  assert.match(limited, /Reload this page in \d+ seconds/);
});

/** A gateway whose only route is in a maintenance window ending `endsInMs` from now. */
async function maintenanceGateway(endsInMs: number) {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  const end = new Date(Date.now() + endsInMs);
  const window = { start: new Date(Date.now() - 60_000).toISOString(), end: end.toISOString() };
  const gw = await startGateway(
    minimalConfig([up.address], {
      top: {
        maintenance: { windows: [{ ...window, message: 'Moving to new servers.' }] },
        status: { path: '/status' },
      },
    }),
  );
  cleanups.push(
    () => gw.close(),
    () => up.close(),
  );
  return { gw, end };
}

/** The sentences a reader sees in the page's main part, tags stripped. */
function sentencesOf(html: string): string[] {
  const main = /<main>([\s\S]*)<\/main>/.exec(html)![1]!;
  return main
    .split(/<\/(?:h1|p|li|h2)>/)
    .map((chunk) =>
      chunk
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim(),
    )
    .filter((line) => line.length > 0)
    .flatMap((line) => line.split(/(?<=[.;:])\s+/));
}

/** Four-word runs of a sentence, lower case: two sentences sharing one say the same thing. */
function fourWordRuns(sentence: string): string[] {
  const words = sentence.toLowerCase().match(/[\p{L}\d]+/gu) ?? [];
  return words.slice(3).map((_, i) => words.slice(i, i + 4).join(' '));
}

test(
  'maintenance says each thing once, and when the service is back as a time ' + 'with its zone and a wait in words',
  async () => {
    // 298 s: the wait new users saw written as "298 s".
    const { gw, end } = await maintenanceGateway(298_000);
    const html = (await fetchRaw(`${gw.url}/x`, { headers: { accept: BROWSER } })).body.toString();
    assert.match(html, /<h1>The music service is down for maintenance<\/h1>/);
    assert.match(html, /Planned maintenance/);
    assert.equal(html.match(/Moving to new servers\./g)?.length, 1);
    const at = new RegExp(
      'Expected back at <time datetime="([^"]+)" data-clock>(\\d{1,2}:\\d\\d [AP]M UTC)</time>, ' +
        'in <span data-until="[^"]+">about 5 minutes</span>\\.',
    ).exec(html);
    assert.ok(at, 'the end of the window is a clock time with its zone, and the wait is in words');
    assert.ok(Math.abs(Date.parse(at[1]!) - end.getTime()) < 2000, `${at[1]} is the window's end`);
    assert.doesNotMatch(html, /\b\d+ s\b/, 'no wait is written in bare seconds');
    assert.equal(html.match(/about 5 minutes/g)?.length, 1, 'the wait is said once, not again by a countdown');
    assert.match(html, /This page checks by itself when the wait is over/);

    const seen = new Map<string, string>();
    for (const sentence of sentencesOf(html)) {
      for (const run of fourWordRuns(sentence)) {
        const before = seen.get(run);
        assert.ok(before === undefined || before === sentence, `"${sentence}" repeats "${before}"`);
        seen.set(run, sentence);
      }
    }

    const german = (
      await fetchRaw(`${gw.url}/x`, { headers: { accept: BROWSER, 'accept-language': 'de' } })
    ).body.toString();
    assert.match(
      german,
      /Voraussichtlich wieder verfügbar: <time [^>]+>\d\d:\d\d UTC<\/time>, in <span [^>]+>etwa 5 Minuten<\/span>\./,
    );
  },
);

test('operators brand the page and change its words; unknown text keys are refused with their path', async () => {
  const logo = `data:image/svg+xml;base64,${Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>').toString('base64')}`;
  const gw = await refusingGateway({
    top: {
      errors: {
        page: {
          brand: { name: 'Tunes', accent: '#7a1fa2', logo },
          texts: {
            en: { 'headline.service': 'Tunes is taking a short break' },
            nl: { 'headline.service': 'Tunes pauzeert even' },
          },
        },
      },
    },
  });
  const html = (await fetchRaw(`${gw.url}/x`, { headers: { accept: BROWSER } })).body.toString();
  assert.match(html, /<h1>Tunes is taking a short break<\/h1>/);
  assert.match(html, /<span>Tunes<\/span>/);
  assert.match(html, /--accent:#7a1fa2/);
  assert.ok(html.includes(`<img src="${logo}"`));
  const dutch = await fetchRaw(`${gw.url}/x`, { headers: { accept: BROWSER, 'accept-language': 'nl' } });
  assert.equal(dutch.headers['content-language'], 'nl', 'a language the operator wrote texts for is offered');
  assert.match(dutch.body.toString(), /<h1>Tunes pauzeert even<\/h1>/);
  assert.match(dutch.body.toString(), /The problem is on our side/, 'untranslated texts fall back to English');

  assert.throws(
    () =>
      validateConfig(
        minimalConfig(['127.0.0.1:1'], { top: { errors: { page: { texts: { en: { 'headline.servce': 'x' } } } } } }),
      ),
    /errors\.page\.texts\.en\.headline\.servce: "headline\.servce" is not a text of the catalogue/,
  );
  assert.throws(
    () =>
      validateConfig(
        minimalConfig(['127.0.0.1:1'], {
          top: { errors: { page: { brand: { logo: 'https://cdn.example.com/logo.png' } } } },
        }),
      ),
    /errors\.page\.brand\.logo: a logo is a base64 data: URL/,
  );
});

test('a template replaces the whole page, its placeholders filled and escaped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gangway-template-'));
  const file = join(dir, 'page.html');
  writeFileSync(
    file,
    '<!doctype html><html lang="{{lang}}"><head>{{head}}</head><body><h1>{{headline}}</h1>{{steps}}<p id="id">{{requestId}}</p><p>{{unknown}}</p>{{script}}</body></html>',
  );
  const gw = await refusingGateway({ top: { errors: { page: { template: file } } } });
  const res = await fetchRaw(`${gw.url}/x`, { headers: { accept: BROWSER, 'x-request-id': 'ticket-7' } });
  const html = res.body.toString();
  assert.match(
    html,
    /^<!doctype html><html lang="en"><head><noscript><meta http-equiv="refresh" content="5"><\/noscript><style>/,
  );
  assert.match(html, /<h1>The music service is not answering right now<\/h1><ol><li>/);
  assert.match(html, /<p id="id">ticket-7<\/p><p>\{\{unknown\}\}<\/p><script>/);
  assert.throws(
    () =>
      validateConfig(
        minimalConfig(['127.0.0.1:1'], { top: { errors: { page: { template: join(dir, 'missing.html') } } } }),
      ),
    /errors\.page\.template: cannot read the template/,
  );
});

test(
  'curl gets plain text that says when to try again, in its language down ' + 'to the labels, with a whole status URL',
  async () => {
    const gw = await refusingGateway({ top: { status: { path: '/status' } } });
    const host = new URL(gw.url).host;
    // curl's own Accept.
    const res = await fetchRaw(`${gw.url}/track`, { headers: { accept: '*/*' } });
    const body = res.body.toString();
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.doesNotMatch(body, /page|reload/i, 'nothing in a terminal retries by itself');
    assert.match(body, /^When to come back: Try again in 5 seconds\.$/m);
    assert.match(body, new RegExp(`^Service status: http://${host}/status$`, 'm'));
    assert.match(
      body,
      /^For support, quote:\n {2}Error: 502 connection_refused\n {2}Request id: \S+\n {2}Time: .+ UTC\n/m,
    );

    const german = (
      await fetchRaw(`${gw.url}/track`, { headers: { accept: 'text/plain', 'accept-language': 'de' } })
    ).body.toString();
    assert.match(german, /^Wann es weitergeht: Versuchen Sie es in 5 Sekunden erneut\.$/m);
    assert.match(german, new RegExp(`^Dienststatus: http://${host}/status$`, 'm'));
    assert.match(german, /^Für den Support bitte angeben:\n {2}Fehler: 502 .+\n {2}Anfrage-ID: .+\n {2}Zeit: /m);
    for (const english of [
      'What you can do',
      'When to come back',
      'For support',
      'Error',
      'Request id',
      'Time',
      'Service status',
    ])
      assert.doesNotMatch(german, new RegExp(`^ *${english}:`, 'm'), `"${english}" is left in English`);

    // The text names no status URL it cannot build from a sound Host: none without one…
    const noHost = await rawExchange(gw.url, 'GET /track HTTP/1.0\r\nAccept: text/plain\r\n\r\n');
    assert.match(noHost, /^HTTP\/1\.1 502 /);
    assert.doesNotMatch(noHost, /Service status/);
    // …and none from a Host that is refused.
    const badHost = await rawExchange(
      gw.url,
      'GET /track HTTP/1.1\r\nHost: evil.example@x\r\nAccept: text/plain\r\n\r\n',
    );
    assert.match(badHost, /^HTTP\/1\.1 400 /);
    assert.doesNotMatch(badHost, /Service status|evil/);
  },
);

test('maintenance in plain text gives the time to come back with its zone, and the wait in words', async () => {
  const { gw } = await maintenanceGateway(298_000);
  const body = (await fetchRaw(`${gw.url}/x`, { headers: { accept: 'text/plain' } })).body.toString();
  assert.match(body, /^When to come back: Try again after \d{1,2}:\d\d [AP]M UTC \(in about 5 minutes\)\.$/m);
  const german = (
    await fetchRaw(`${gw.url}/x`, { headers: { accept: 'text/plain', 'accept-language': 'de' } })
  ).body.toString();
  assert.match(german, /^Wann es weitergeht: Versuchen Sie es ab \d\d:\d\d UTC erneut \(in etwa 5 Minuten\)\.$/m);
});

test("counts take the language's plural form: 1 second, 2 seconds, 1 Sekunde, and an operator's Polish", async () => {
  const up = await httpUpstream((_req, res) => res.end('ok'));
  cleanups.push(() => up.close());
  const polish = {
    'duration.seconds': '{count, plural, one {# sekundę} few {# sekundy} many {# sekund} other {# sekundy}}',
    'reply.try_again': 'Spróbuj ponownie za {duration}.',
  };
  // One request per window: the next is refused until the window has refilled, Retry-After = the window.
  const limited = async (window: string, headers: Record<string, string>) => {
    const gw = await startGateway(
      minimalConfig([up.address], {
        route: { rateLimit: { requests: 1, window } },
        top: { errors: { page: { texts: { pl: polish } } } },
      }),
    );
    cleanups.push(() => gw.close());
    await fetchRaw(`${gw.url}/x`);
    return (await fetchRaw(`${gw.url}/x`, { method: 'POST', headers })).body.toString();
  };
  assert.match(await limited('1s', { accept: 'text/plain' }), /Try again in 1 second\./);
  assert.match(await limited('2s', { accept: 'text/plain' }), /Try again in 2 seconds\./);
  assert.match(
    await limited('1s', { accept: 'text/plain', 'accept-language': 'de' }),
    /Versuchen Sie es in 1 Sekunde erneut\./,
  );
  assert.match(await limited('1s', { accept: BROWSER }), /Reload this page in 1 second\./);
  assert.match(
    await limited('2s', { accept: BROWSER, 'accept-language': 'de' }),
    /Laden Sie diese Seite in 2 Sekunden neu\./,
  );
  assert.match(
    await limited('2s', { accept: 'text/plain', 'accept-language': 'pl' }),
    /Spróbuj ponownie za 2 sekundy\./,
  );
  assert.match(
    await limited('5s', { accept: 'text/plain', 'accept-language': 'pl' }),
    /Spróbuj ponownie za 5 sekund\./,
  );
});

test('every language of the catalogue writes its durations as plurals that tell 1 from 2', () => {
  for (const [lang, words] of Object.entries(CATALOGUES)) {
    for (const unit of ['seconds', 'minutes', 'hours', 'days'] as const) {
      const key = `duration.${unit}` as const;
      assert.match(words[key] ?? '', /^\{count, plural, /, `${lang} ${key} is a plural`);
      assert.notEqual(
        text(lang, key, undefined, { count: 1 }).replace('1', 'N'),
        text(lang, key, undefined, { count: 2 }).replace('2', 'N'),
        `${lang} ${key}: 1 and 2 take different forms`,
      );
    }
  }
  assert.equal(humanDuration(298, 'en'), 'about 5 minutes');
  assert.equal(humanDuration(60, 'de'), '1 Minute');
  assert.equal(humanDuration(7200, 'de'), '2 Stunden');
  assert.equal(humanDuration(100_000, 'en'), 'about 28 hours');
  assert.equal(humanDuration(200_000, 'de'), 'etwa 2 Tagen');
});
