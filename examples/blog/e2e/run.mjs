#!/usr/bin/env node
// Browser test of the deployed example blog, as a visitor sees it: Debian's Chromium (headless,
// driven by playwright-core) opens the site, logs in, writes a post with an image, sees it listed
// and its Celery result (the word count) appear, opens the post's deep link, and saves a screenshot.
//
//   node run.mjs URL [--screenshot FILE] [--user NAME] [--password PW] [--timeout SECONDS]
//                    [--ignore-https-errors] [--no-netns]
//
// URL is the site's origin, e.g. http://blog.localhost:21080 (Chromium resolves every *.localhost
// name to the loopback address itself, so the edge sees its domain without /etc/hosts entries).
// --ignore-https-errors accepts any certificate: for the edge's local development CA, which a fresh
// Chromium profile does not trust (never against a site with a real certificate).
//
// Network isolation: Chromium aborts its open requests with ERR_NETWORK_CHANGED whenever a network
// interface of its namespace comes or goes — which dockerd does for every container it starts. So,
// when run as root with `unshare` and `ip` available (else with a note, or never with --no-netns),
// the browser runs in a network namespace of its own that has only a loopback interface; a
// forwarder there (netns-forward.mjs) carries connections to the site's port through a unix socket
// to this process, which connects to the same port on the host's loopback. Nothing but that one
// loopback port is reachable from the browser.
// The password may come from $BLOG_PASSWORD instead of argv (default: the example's demo password);
// $CHROMIUM overrides /usr/bin/chromium. Progress goes to stderr; the last stdout line is a JSON
// summary {"ok", "post_id", "screenshot", "ms": {step: milliseconds}}. Exit 0 on success, 1 on a
// failed check, 2 on bad usage or the overall timeout.

import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { deflateSync } from 'node:zlib'
import { chromium } from 'playwright-core'

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-proxy-server', // the site is on loopback; never go through a proxy from the environment
]

function usage(msg) {
  if (msg) console.error(`run.mjs: ${msg}`)
  console.error(
    'usage: node run.mjs URL [--screenshot FILE] [--user NAME] [--password PW] [--timeout SECONDS] [--ignore-https-errors] [--no-netns]',
  )
  process.exit(2)
}

function parseArgs(argv) {
  const opts = {
    url: null,
    screenshot: null,
    user: process.env.BLOG_USER || 'admin',
    password: process.env.BLOG_PASSWORD || 'admin-demo-password',
    timeout: 180,
    ignoreHttpsErrors: false,
    netns: true,
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--screenshot') opts.screenshot = value()
    else if (a === '--user') opts.user = value()
    else if (a === '--password') opts.password = value()
    else if (a === '--timeout') opts.timeout = Number(value())
    else if (a === '--ignore-https-errors') opts.ignoreHttpsErrors = true
    else if (a === '--no-netns') opts.netns = false
    else if (a === '-h' || a === '--help') usage()
    else if (a.startsWith('-')) usage(`unknown option ${a}`)
    else if (!opts.url) opts.url = a
    else usage(`unexpected argument ${a}`)
  }
  if (!opts.url) usage('the site URL is missing')
  let u
  try {
    u = new URL(opts.url)
  } catch {
    usage(`not a URL: ${opts.url}`)
  }
  if (!['http:', 'https:'].includes(u.protocol)) usage(`not an http(s) URL: ${opts.url}`)
  opts.origin = u.origin
  opts.port = Number(u.port || (u.protocol === 'https:' ? 443 : 80))
  if (!(opts.timeout > 0)) usage('--timeout must be a positive number of seconds')
  return opts
}

// A small valid PNG (a 64x48 gradient), made here so the test needs no fixture file.
function makePng(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    return c >>> 0
  })
  const crc32 = (buf) => {
    let c = 0xffffffff
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8)
    return (c ^ 0xffffffff) >>> 0
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data])
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(body))
    return Buffer.concat([len, body, crc])
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 2 // truecolour RGB
  const rows = []
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3)
    for (let x = 0; x < width; x++) {
      row[1 + x * 3] = 31 + Math.round((x / width) * 150)
      row[2 + x * 3] = 78 + Math.round((y / height) * 120)
      row[3 + x * 3] = 121
    }
    rows.push(row)
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

// Can this process give the browser a network namespace of its own?
function netnsAvailable() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root'
  const r = spawnSync('unshare', ['--net', 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'ignore' })
  return r.status === 0 ? null : 'unshare --net or ip failed'
}

// The executable Playwright starts: Chromium inside a new network namespace with a forwarder to
// the site's port (see the header). Returns [executable, close()].
async function isolatedChromium(work, browser, port) {
  const sock = join(work, 'site.sock')
  const server = net.createServer((c) => {
    const up = net.connect(port, '127.0.0.1')
    c.pipe(up)
    up.pipe(c)
    c.on('error', () => up.destroy())
    up.on('error', () => c.destroy())
  })
  await new Promise((ok, fail) => server.once('error', fail).listen(sock, ok))
  const q = (x) => {
    if (String(x).includes("'")) throw new Error(`cannot quote ${x}`)
    return `'${x}'`
  }
  const forwarder = fileURLToPath(new URL('./netns-forward.mjs', import.meta.url))
  const inner = join(work, 'chromium-inner.sh')
  writeFileSync(
    inner,
    `#!/bin/sh\nset -e\nip link set lo up\n${q(process.execPath)} ${q(forwarder)} ${port} ${q(sock)} $$ &\n` +
      `exec ${q(browser)} "$@"\n`,
  )
  const outer = join(work, 'chromium-netns.sh')
  writeFileSync(outer, `#!/bin/sh\nexec unshare --net -- /bin/sh ${q(inner)} "$@"\n`)
  chmodSync(outer, 0o755)
  return [outer, () => server.close()]
}

const t0 = Date.now()
const log = (msg) => console.error(`[e2e ${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`)

class CheckFailed extends Error {}
function check(cond, msg) {
  if (!cond) throw new CheckFailed(msg)
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const watchdog = setTimeout(() => {
    console.error(`run.mjs: not done after ${opts.timeout} s`)
    process.exit(2)
  }, opts.timeout * 1000)
  watchdog.unref()

  const base = opts.origin
  const shot = resolve(opts.screenshot || join(tmpdir(), `berth-blog-e2e-${process.pid}.png`))
  const work = mkdtempSync(join(tmpdir(), 'berth-blog-chromium-'))
  const profile = join(work, 'profile')
  let executable = process.env.CHROMIUM || '/usr/bin/chromium'
  let closeForwarder = () => {}
  const ms = {}
  let last = Date.now()
  const step = (name) => {
    const now = Date.now()
    ms[name] = now - last
    last = now
    log(`ok: ${name} (${ms[name]} ms)`)
  }

  const problems = [] // page errors and server errors seen on the way; any fails the run
  let context
  try {
    const why = opts.netns ? netnsAvailable() : '--no-netns'
    if (why === null) {
      ;[executable, closeForwarder] = await isolatedChromium(work, executable, opts.port)
      log(`chromium runs in its own network namespace (loopback port ${opts.port} forwarded)`)
    } else {
      log(`chromium shares the host's network namespace (${why}): requests may fail with ERR_NETWORK_CHANGED`)
    }
    context = await chromium.launchPersistentContext(profile, {
      executablePath: executable,
      headless: true,
      args: FLAGS,
      viewport: { width: 1000, height: 760 },
      ignoreHTTPSErrors: opts.ignoreHttpsErrors,
      timeout: 60_000,
    })
    context.setDefaultTimeout(20_000)
    const page = context.pages()[0] || (await context.newPage())
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
    page.on('console', (m) => {
      if (m.type() === 'error') log(`console error: ${m.text()}`)
    })
    page.on('response', (r) => {
      if (r.status() >= 500) problems.push(`HTTP ${r.status()} from ${r.url()}`)
    })
    page.on('requestfailed', (r) => log(`request failed: ${r.url()} (${r.failure()?.errorText})`))
    step('launch chromium')

    // 1. The site: the list and the stats footer (the beat task's counter) render.
    const first = await page.goto(base + '/', { waitUntil: 'load' })
    check(first && first.status() === 200, `GET / answered ${first && first.status()}`)
    await page.getByRole('heading', { name: 'Posts' }).waitFor()
    await page.getByTestId('beat-runs').waitFor()
    check((await page.title()) === 'berth blog', `the page title is ${JSON.stringify(await page.title())}`)
    step('open the site')

    // 2. Log in through the form; the token survives a reload (localStorage).
    await page.getByTestId('nav-login').click()
    await page.waitForURL(base + '/login')
    await page.getByLabel('Username').fill(opts.user)
    await page.getByLabel('Password').fill(opts.password)
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.getByTestId('whoami').filter({ hasText: opts.user }).waitFor()
    const token = await page.evaluate(() => localStorage.getItem('blog.token'))
    check(typeof token === 'string' && token.length >= 20, 'no API token in localStorage after the login')
    await page.reload()
    await page.getByTestId('whoami').filter({ hasText: opts.user }).waitFor()
    step('log in')

    // 3. Write a post with an image.
    const title = `Hello from Chromium ${new Date().toISOString()}`
    const body = 'The quick brown fox jumps over the lazy dog and berth deploys it'
    const words = body.split(/\s+/).length
    await page.getByTestId('nav-new').click()
    await page.getByLabel('Title').fill(title)
    await page.getByLabel('Text').fill(body)
    await page.getByLabel('Image (optional)').setInputFiles({
      name: 'gradient.png',
      mimeType: 'image/png',
      buffer: makePng(64, 48),
    })
    const created = page.waitForResponse((r) => r.url() === base + '/api/posts' && r.request().method() === 'POST')
    await page.getByRole('button', { name: 'Publish' }).click()
    const createdRes = await created
    check(createdRes.status() === 201, `POST /api/posts answered ${createdRes.status()}`)
    const post = await createdRes.json()
    await page.waitForURL(base + '/')
    step('create a post')

    // 4. It is listed, and the Celery worker's word count appears (the list polls).
    const card = page.locator(`[data-testid="post-card"][data-post-id="${post.id}"]`)
    await card.getByRole('link', { name: title }).waitFor()
    step('see it listed')
    await card.getByTestId('word-count').filter({ hasText: `${words} words` }).waitFor({ timeout: 60_000 })
    const thumbWidth = await card.locator('img.thumb').evaluate(async (img) => {
      if (!img.complete) await new Promise((ok) => img.addEventListener('load', ok, { once: true }))
      return img.naturalWidth
    })
    check(thumbWidth === 64, `the uploaded image did not load from /media (width ${thumbWidth})`)
    step('see the Celery result')

    // 5. The deep link, opened directly: the edge answers it with the app (SPA fallback).
    const deep = await page.goto(`${base}/posts/${post.id}`, { waitUntil: 'load' })
    check(deep && deep.status() === 200, `GET /posts/${post.id} answered ${deep && deep.status()}`)
    check(
      (deep.headers()['content-type'] || '').startsWith('text/html'),
      `GET /posts/${post.id} is ${deep.headers()['content-type']}, not the app`,
    )
    await page.getByTestId('post-title').filter({ hasText: title }).waitFor()
    await page.getByTestId('word-count').filter({ hasText: `${words} words` }).waitFor()
    const heroWidth = await page.getByTestId('post-image').evaluate(async (img) => {
      if (!img.complete) await new Promise((ok) => img.addEventListener('load', ok, { once: true }))
      return img.naturalWidth
    })
    check(heroWidth === 64, `the post's image did not load (width ${heroWidth})`)
    await page.getByTestId('whoami').filter({ hasText: opts.user }).waitFor()
    step('open the deep link')

    mkdirSync(dirname(shot), { recursive: true })
    await page.screenshot({ path: shot, fullPage: true })
    step('screenshot')

    // 6. A deep link to a post that does not exist: still the app, which says so.
    const gone = await page.goto(`${base}/posts/987654321`, { waitUntil: 'load' })
    check(gone && gone.status() === 200, `GET /posts/987654321 answered ${gone && gone.status()}`)
    await page.getByTestId('missing').waitFor()
    step('unknown deep link')

    // 7. A token the backend no longer knows (e.g. after a login elsewhere) is dropped on start.
    await page.evaluate(() => localStorage.setItem('blog.token', 'not-a-valid-token'))
    await page.goto(base + '/', { waitUntil: 'load' })
    await page.getByTestId('nav-login').waitFor()
    check(
      (await page.evaluate(() => localStorage.getItem('blog.token'))) === null,
      'a rejected token stayed in localStorage',
    )
    step('stale token dropped')

    check(problems.length === 0, problems.join('; '))
    console.error(`screenshot: ${shot}`)
    console.log(JSON.stringify({ ok: true, post_id: post.id, screenshot: shot, ms }))
    return 0
  } catch (e) {
    const msg = e instanceof CheckFailed ? e.message : e.stack || String(e)
    console.error(`run.mjs: FAILED: ${msg}`)
    if (problems.length) console.error(`run.mjs: also seen: ${problems.join('; ')}`)
    if (context) {
      const fail = shot.replace(/\.png$/, '') + '-failed.png'
      try {
        const p = context.pages()[0]
        if (p) {
          await p.screenshot({ path: fail, fullPage: true })
          console.error(`screenshot of the failure: ${fail}`)
        }
      } catch {
        // the browser is gone; nothing to show
      }
    }
    console.log(JSON.stringify({ ok: false, error: msg.split('\n')[0], ms }))
    return 1
  } finally {
    if (context) await context.close().catch(() => {})
    closeForwarder()
    rmSync(work, { recursive: true, force: true })
    clearTimeout(watchdog)
  }
}

process.exitCode = await main()
