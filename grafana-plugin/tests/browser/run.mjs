// Browser test of the plugin's editors: bundles tests/browser/harness.tsx
// (the libraries Grafana provides to plugins) with esbuild, serves it and the
// BUILT plugin (dist/, from `npm run build`) from 127.0.0.1, drives the
// editors in headless Debian Chromium (/usr/bin/chromium) through
// playwright-core, and saves a screenshot to tests/browser/out/editors.png.
// Exits non-zero when an editor does not render or an interaction has no effect.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'out');
const dist = join(here, '..', '..', 'dist');
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

if (!existsSync(chromiumPath)) {
  console.error(`${chromiumPath} not found: install Debian's chromium (apt-get install -y chromium)`);
  process.exit(1);
}
if (!existsSync(join(dist, 'module.js'))) {
  console.error(`${join(dist, 'module.js')} not found: run npm run build first`);
  process.exit(1);
}
mkdirSync(out, { recursive: true });

await esbuild.build({
  entryPoints: [join(here, 'harness.tsx')],
  bundle: true,
  outfile: join(out, 'harness.js'),
  platform: 'browser',
  format: 'iife',
  target: 'es2020',
  minify: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"', global: 'window' },
  loader: { '.svg': 'text', '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl', '.png': 'dataurl' },
});

const page = `<!doctype html><html><head><meta charset="utf-8"><title>Junction editors</title>
<link rel="stylesheet" href="harness.css"></head>
<body style="background:#111217;color:#ccccdc;font-family:sans-serif"><div id="root"></div><script src="harness.js"></script></body></html>`;
const types = { '.js': 'text/javascript', '.css': 'text/css' };
const served = new Set();
const server = createServer((req, res) => {
  served.add(req.url);
  const name = req.url === '/' ? null : req.url.slice(1).split('?')[0];
  if (name === null) {
    res.writeHead(200, { 'Content-Type': 'text/html' }).end(page);
    return;
  }
  const file = name.startsWith('dist/') ? join(dist, name.slice(5)) : join(out, name);
  if (!name.includes('..') && existsSync(file)) {
    res.writeHead(200, { 'Content-Type': types[extname(file)] || 'application/octet-stream' }).end(readFileSync(file));
    return;
  }
  res.writeHead(404).end();
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});
const errors = [];
try {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  ctx.setDefaultTimeout(10000);
  const p = await ctx.newPage();
  p.on('pageerror', (e) => errors.push(e.message));
  // Nothing but the harness may load: the page must work offline.
  await p.route('**/*', (route) => (route.request().url().startsWith(base) ? route.continue() : route.abort()));
  await p.goto(base);

  const state = async (id) => JSON.parse(await p.locator(id).textContent());

  // ConfigEditor: type a URL and a token.
  const url = p.getByLabel('URL', { exact: true });
  await url.waitFor({ timeout: 15000 });
  await url.fill('http://junction.example:8480');
  await p.getByLabel('Bearer token').fill('s3cret');
  // The switch's checkbox is visually hidden; people click its label.
  const switchId = await p.getByLabel('Skip certificate check').getAttribute('id');
  await p.locator(`label[for="${switchId}"]`).last().click();
  const cfg = await state('#config-state');
  assert.equal(cfg.url, 'http://junction.example:8480', 'typing the URL did not reach the settings');
  assert.equal(cfg.secureJsonData?.bearerToken, 's3cret', 'the token did not reach secureJsonData');
  assert.equal(cfg.jsonData?.tlsSkipVerify, true, 'the TLS switch had no effect');
  assert.ok(!JSON.stringify(cfg.jsonData).includes('s3cret'), 'the token leaked into jsonData');

  // QueryEditor: alerts filters first, then switch to entity series.
  await p.getByLabel('Severity').fill('critical');
  assert.equal((await state('#query-state')).query.severity, 'critical');
  assert.equal(await p.getByLabel('Feature').count(), 0, 'series fields shown for an alerts query');
  await p.getByRole('radio', { name: 'Entity series' }).click();
  await p.getByLabel('Feature').waitFor({ timeout: 5000 });
  await p.getByLabel('Feature').fill('latency.p99_ms');
  await p.getByLabel('Entity', { exact: true }).fill('service:shop/checkout');
  await p.getByLabel('Step').click();
  const qs = await state('#query-state');
  assert.equal(qs.query.queryType, 'series', 'picking the query type had no effect');
  assert.equal(qs.query.feature, 'latency.p99_ms');
  assert.equal(qs.query.entity, 'service:shop/checkout');
  assert.ok(qs.runs >= 2, `the query did not run on type change and blur (runs=${qs.runs})`);

  assert.ok(served.has('/dist/module.js'), 'the built plugin bundle was not loaded');
  await p.screenshot({ path: join(out, 'editors.png'), fullPage: true });
  assert.deepEqual(errors, [], 'the page threw');
  console.log(`browser test passed; screenshot ${join(out, 'editors.png')}`);
} catch (e) {
  console.error(e);
  if (errors.length) {
    console.error('page errors:', errors);
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  server.close();
}
