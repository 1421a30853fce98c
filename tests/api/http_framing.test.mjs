// How a request is framed and its headers read, over raw TCP where fetch would tidy the bytes
// up: a message whose length is ambiguous is refused and its connection closed, so no byte of it
// is read as a request of its own; a header that says two things is refused rather than read by
// its first copy; a client that waits before sending its body hears a refusal before it sends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startWithOrg } from '../lib/tallyd.mjs';

let t;
before(async () => { t = await startWithOrg(); });
after(async () => { await t.cleanup(); });

// Writes `bytes` on a fresh connection; resolves with all that came back once the server closes
// it (or after `wait` ms, when it keeps the connection open), and whether it closed it.
function exchange(bytes, { wait = 3000, stopAt } = {}) {
  const { port, hostname } = new URL(t.url);
  return new Promise((resolve) => {
    let data = '';
    let closed = false;
    const s = net.connect(Number(port), hostname, () => s.write(bytes));
    const timer = setTimeout(() => s.destroy(), wait);
    s.on('data', (d) => { data += d; if (stopAt && stopAt(data)) s.destroy(); });
    s.on('end', () => { closed = true; });
    s.on('close', () => { clearTimeout(timer); resolve({ data, closed }); });
    s.on('error', () => {});
  });
}

const statusLines = (data) => data.match(/HTTP\/1\.1 \d\d\d [^\r]*/g) || [];

const customer = async (id) => (await t.api(`/api/v1/customers/${id}`)).status;

// Found by a black-box audit: libmicrohttpd framed the body by the first of two Content-Length
// headers and read the rest of the bytes as a second request, which ran with the first one's
// key (a proxy that honours the other header sees one request; Tally ran two).
test('two Content-Length headers are a 400 that closes the connection, and nothing runs', async () => {
  const body = '{"customer":{"external_id":"smug_1","name":"C"}}';
  const smuggled = `DELETE /api/v1/customers/smug_0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\n\r\n`;
  assert.equal((await t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'smug_0' } } })).status, 200);
  const head = `POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\n`;
  const cases = [
    // differing: the smuggling itself
    `Content-Length: ${body.length}\r\nContent-Length: ${body.length + smuggled.length}\r\n`,
    `Content-Length: ${body.length + smuggled.length}\r\nContent-Length: ${body.length}\r\n`,
    // equal: RFC 9112 6.3 lets a server collapse them; Tally refuses any repetition, as
    // libmicrohttpd already refuses the same two values written as one list ("47, 47")
    `Content-Length: ${body.length}\r\nContent-Length: ${body.length}\r\n`,
    // both framings at once (RFC 9112 6.1: the message cannot be trusted)
    `Transfer-Encoding: chunked\r\nContent-Length: ${body.length}\r\n`,
    `Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n`,
  ];
  for (const framing of cases) {
    const r = await exchange(`${head}${framing}\r\n${body}${smuggled}`);
    assert.deepEqual(statusLines(r.data), ['HTTP/1.1 400 Bad Request'], framing);
    assert.match(r.data, /\r\nConnection: close\r\n/i, framing);
    assert.match(r.data, /\r\n\r\n\{"status":400,"error":"BadRequest: [^"]+"\}$/, framing);
    assert.ok(r.closed, `the server closed the connection: ${framing}`);
  }
  assert.equal(await customer('smug_1'), 404); // the POST did not run
  assert.equal(await customer('smug_0'), 200); // nor did the DELETE inside its body
});

test('one Content-Length, or chunked alone, frames as ever, pipelined requests included', async () => {
  const body = '{"customer":{"external_id":"frame_1"}}';
  const head = `POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\n`;
  const get = `GET /api/v1/customers/frame_1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\nConnection: close\r\n\r\n`;
  const r = await exchange(`${head}Content-Length: ${body.length}\r\n\r\n${body}${get}`);
  assert.deepEqual(statusLines(r.data), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
  const chunked = `${body.length.toString(16)}\r\n${body.replace('frame_1', 'frame_2')}\r\n0\r\n\r\n`;
  const c = await exchange(`${head}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}`);
  assert.deepEqual(statusLines(c.data), ['HTTP/1.1 200 OK']);
  assert.equal(await customer('frame_2'), 200);
});

// Found by a black-box audit: a client without a valid key that waited for "100 Continue" was
// invited to upload its body (up to the body limit) before hearing 401. It now hears 401 at
// once, and its connection closes, so a body it sends anyway is never read as a request.
test('Expect: 100-continue without a valid key is a 401 before the body is invited', async () => {
  const body = '{"customer":{"external_id":"expect_1"}}';
  const head = (auth) => `POST /api/v1/customers HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`;
  for (const auth of ['', 'Authorization: Bearer tly_wrong\r\n', 'Authorization: Basic abc\r\n']) {
    const r = await exchange(head(auth), { wait: 3000 });
    assert.deepEqual(statusLines(r.data), ['HTTP/1.1 401 Unauthorized'], auth);
    assert.match(r.data, /\r\n\r\n\{"status":401,"error":"Unauthorized"\}$/);
    assert.match(r.data, /\r\nConnection: close\r\n/i);
    assert.ok(r.closed, auth);
  }
  // with the key, the body is invited, sent, and served as ever
  const { port, hostname } = new URL(t.url);
  const served = await new Promise((resolve) => {
    let data = '';
    const s = net.connect(Number(port), hostname, () => s.write(head(`Authorization: Bearer ${t.key}\r\n`)));
    s.on('data', (d) => {
      data += d;
      if (data === 'HTTP/1.1 100 Continue\r\n\r\n') s.write(body);
      if (/\r\n\r\n\{.*\}$/s.test(data.slice(25))) s.destroy();
    });
    s.on('close', () => resolve(data));
    s.on('error', () => {});
    setTimeout(() => s.destroy(), 3000);
  });
  assert.deepEqual(statusLines(served), ['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
  assert.equal(await customer('expect_1'), 200);
  // unauthenticated routes are unchanged
  const health = await exchange('GET /health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
  assert.deepEqual(statusLines(health.data), ['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
});

// Found by a black-box audit: libmicrohttpd hands out the first of repeated headers, so two
// Idempotency-Key headers (a client and a proxy each adding one) deduplicated on the first key
// without a word.
test('two Idempotency-Key headers with different values are a 400; equal ones are one key', async () => {
  const body = '{"customer":{"external_id":"idem_dup"}}';
  const post = (keys) => exchange(`POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${keys.map((k) => `Idempotency-Key: ${k}\r\n`).join('')}Connection: close\r\n\r\n${body}`);
  const two = await post(['dupA', 'dupB']);
  assert.deepEqual(statusLines(two.data), ['HTTP/1.1 400 Bad Request']);
  assert.match(two.data, /\{"status":400,"error":"BadRequest: Idempotency-Key is sent more than once with different values"\}$/);
  assert.equal(await customer('idem_dup'), 404);
  const same = await post(['dupC', 'dupC']);
  assert.deepEqual(statusLines(same.data), ['HTTP/1.1 200 OK']);
  const again = await post(['dupC']); // the same key: a replay
  assert.equal(again.data.split('\r\n\r\n')[1], same.data.split('\r\n\r\n')[1]);
});

// Found by a black-box audit: "bearer KEY" and "Bearer KEY " were 401. The scheme is
// case-insensitive (RFC 9110 11.1) and whitespace around a field value is not part of it (RFC
// 9110 5.5); Lago reads the key as the header's second word. fetch trims values, so raw TCP.
test('the Bearer scheme in any case, and whitespace around the key, authenticate', async () => {
  const get = (auth) => exchange(`GET /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`);
  for (const auth of [`Bearer ${t.key}`, `bearer ${t.key}`, `BEARER ${t.key}`, `bEaReR ${t.key}`, `Bearer ${t.key} `, `Bearer ${t.key}\t \t`, `Bearer  \t${t.key}`, `bearer ${t.key}  `])
    assert.deepEqual(statusLines((await get(auth)).data), ['HTTP/1.1 200 OK'], JSON.stringify(auth));
  for (const auth of [`Bearer${t.key}`, `Bearer ${t.key} x`, `Bearer ${t.key}x`, `Basic ${t.key}`, `Bearers ${t.key}`, 'Bearer', 'Bearer  ', `${t.key}`])
    assert.deepEqual(statusLines((await get(auth)).data), ['HTTP/1.1 401 Unauthorized'], JSON.stringify(auth));
});

// Found by a black-box audit: a Transfer-Encoding other than "chunked" alone (gzip, identity,
// a list) left libmicrohttpd waiting for a body it could not frame: no answer for 60 s. RFC 9112
// 6.1: a server answers a transfer coding it does not know with 501, and closes.
test('a transfer coding other than chunked is a 501 at once, and the connection closes', async () => {
  const head = `POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\n`;
  for (const coding of ['gzip', 'identity', 'gzip, chunked', 'chunked, chunked']) {
    const started = Date.now();
    const r = await exchange(`${head}Transfer-Encoding: ${coding}\r\n\r\n0\r\n\r\n`, { wait: 5000 });
    assert.deepEqual(statusLines(r.data), ['HTTP/1.1 501 Not Implemented'], coding);
    assert.match(r.data, /\r\n\r\n\{"status":501,"error":"Not Implemented","code":"transfer_coding_not_supported"/, coding);
    assert.ok(r.closed && Date.now() - started < 4000, `answered and closed at once: ${coding}`);
  }
  // plain chunked still works
  const body = '{"customer":{"external_id":"chunky"}}';
  const r = await exchange(`${head}Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
  assert.deepEqual(statusLines(r.data), ['HTTP/1.1 200 OK']);
});

// Lago's 400 with the connection closed: what a request whose bytes cannot be read as sent gets.
function assertRefused(r, what, status = 'HTTP/1.1 400 Bad Request') {
  assert.deepEqual(r.data.match(/HTTP\/1\.[01] \d\d\d [^\r]*/g) || [], [status], what);
  assert.match(r.data, /\r\nConnection: close\r\n/i, what);
  if (status.endsWith('400 Bad Request'))
    assert.match(r.data, /\r\n\r\n\{"status":400,"error":"BadRequest: [^"]+"\}$/, what);
  assert.ok(r.closed, `the server closed the connection: ${what}`);
}

// Found by a black-box audit: libmicrohttpd reads "Content-Length : N" as a header named
// "Content-Length " and a folded "Content-Length:\r\n N" as one named "Content-LengthN", so it
// framed no body and read the declared body as a second request, which ran. RFC 9112 5.1: a
// name with whitespace before the colon MUST be a 400; 5.2: an obs-fold is refused (or unfolded).
test('whitespace before a header colon, or a folded header line, is a 400 that closes, and nothing runs', async () => {
  const inner = `DELETE /api/v1/customers/fold_victim HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\n\r\n`;
  assert.equal((await t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'fold_victim' } } })).status, 200);
  const head = `POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\n`;
  const cases = [
    `Content-Length : ${inner.length}\r\n`,
    `Content-Length\t: ${inner.length}\r\n`,
    `Content-Length:\r\n ${inner.length}\r\n`,
    `Content-Length:\r\n\t${inner.length}\r\n`,
    `X-Note: a\r\n b\r\nContent-Length: 0\r\n`, // a fold anywhere, not only on framing headers
    `X-Note: a\r\n Content-Length: ${inner.length}\r\n`,
    `Content-Length: 0\r\nX-Note: a\r\n b\r\n`, // on the last header line
    `Transfer-Encoding : chunked\r\n`,
    `Transfer-Encoding:\r\n chunked\r\n`,
  ];
  for (const framing of cases) {
    const r = await exchange(`${head}${framing}\r\n${inner}`);
    assertRefused(r, JSON.stringify(framing));
  }
  assert.equal(await customer('fold_victim'), 200);
});

// Found by a black-box audit: libmicrohttpd keeps a raw NUL in the request line and in a header
// value and hands both out as C strings, cut at the NUL: "DELETE /customers/alice<NUL>bob"
// deleted alice, "Bearer KEY<NUL>junk" authenticated. RFC 9110 5.5: such a value MUST be rejected
// (or the NUL replaced); a request-target holds no NUL at all.
test('a raw NUL in the request line or in a header is a 400 that closes, and nothing runs', async () => {
  for (const id of ['nul_alice', 'nul_bob'])
    assert.equal((await t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: id } } })).status, 200);
  const rest = `Host: x\r\nAuthorization: Bearer ${t.key}\r\nConnection: close\r\n\r\n`;
  for (const line of ['DELETE /api/v1/customers/nul_alice\0bob HTTP/1.1', 'DELETE /api/v1/customers/nul_alice\0 HTTP/1.1',
    'DELETE /api/v1/customers/nul_alice?x=1\0y HTTP/1.1', 'GET /api/v1/customers?external_id=nul_bob\0x HTTP/1.1',
    'DELETE\0X /api/v1/customers/nul_alice HTTP/1.1'])
    assertRefused(await exchange(`${line}\r\n${rest}`), JSON.stringify(line));
  assert.equal(await customer('nul_alice'), 200);
  const get = 'GET /api/v1/customers/nul_bob HTTP/1.1\r\nHost: x\r\n';
  for (const headers of [`Authorization: Bearer ${t.key}\0junk\r\n`, `Authorization: Bearer ${t.key}\0\r\n`,
    `Authorization: Bearer ${t.key}\r\nX-Note: a\0b\r\n`, `Authorization: Bearer ${t.key}\r\nX-Note: a\0\0b\r\n`,
    `X-Note: a\0b\r\nAuthorization: Bearer ${t.key}\r\n`])
    assertRefused(await exchange(`${get}${headers}Connection: close\r\n\r\n`), JSON.stringify(headers));
  const body = '{"customer":{"external_id":"nul_idem"}}';
  const keyed = await exchange(`POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\nIdempotency-Key: k1\0k2\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  assertRefused(keyed, 'Idempotency-Key with a NUL');
  assert.equal(await customer('nul_idem'), 404);
  // bare LF line ends and a header section read in many small pieces still pass
  const lf = await exchange(`GET /api/v1/customers/nul_bob HTTP/1.1\nHost: x\nAuthorization: Bearer ${t.key}\nConnection: close\n\n`);
  assert.deepEqual(statusLines(lf.data), ['HTTP/1.1 200 OK']);
  const big = `GET /api/v1/customers/nul_bob HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\n${Array.from({ length: 60 }, (_, i) => `X-Pad-${i}: ${'v'.repeat(200)}\r\n`).join('')}Connection: close\r\n\r\n`;
  const { port, hostname } = new URL(t.url);
  const pieces = await new Promise((resolve) => {
    let data = '';
    const s = net.connect(Number(port), hostname, async () => {
      for (let i = 0; i < big.length; i += 700) {
        s.write(big.slice(i, i + 700));
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    s.on('data', (d) => { data += d; });
    s.on('close', () => resolve(data));
    s.on('error', () => {});
    setTimeout(() => s.destroy(), 3000);
  });
  assert.deepEqual(statusLines(pieces), ['HTTP/1.1 200 OK']);
});

// Found by a black-box audit: "Transfer-Encoding: chunked " (trailing whitespace) passed the
// check, which trimmed it, while libmicrohttpd frames as chunked only the value "chunked" (any
// case, leading whitespace dropped, trailing kept): it waited 60 s for a body it could not frame.
test('"chunked" with whitespace after it is refused at once, as libmicrohttpd cannot frame it', async () => {
  const body = '{"customer":{"external_id":"te_ows"}}';
  const head = `POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\n`;
  const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  for (const coding of ['chunked ', 'chunked\t', ' chunked \t']) {
    const started = Date.now();
    const r = await exchange(`${head}Transfer-Encoding:${coding}\r\n\r\n${chunked}`, { wait: 5000 });
    assertRefused(r, JSON.stringify(coding), 'HTTP/1.1 501 Not Implemented');
    assert.ok(Date.now() - started < 4000, `answered at once: ${JSON.stringify(coding)}`);
  }
  assert.equal(await customer('te_ows'), 404);
  const lead = await exchange(`${head}Transfer-Encoding: \t chunked\r\nConnection: close\r\n\r\n${chunked}`);
  assert.deepEqual(statusLines(lead.data), ['HTTP/1.1 200 OK']);
});

// Found by a black-box audit: RFC 9112 rules on the header section that libmicrohttpd leaves to
// the application.
test('two Host headers, two different Authorization headers, or HTTP/1.0 with Transfer-Encoding, are a 400 that closes', async () => {
  assert.equal((await t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'hdr_1' } } })).status, 200);
  const get = 'GET /api/v1/customers/hdr_1 HTTP/1.1\r\n';
  const auth = `Authorization: Bearer ${t.key}\r\n`;
  assertRefused(await exchange(`${get}Host: a\r\nHost: b\r\n${auth}\r\n`), 'two Host'); // RFC 9112 3.2
  assertRefused(await exchange(`${get}Host: a\r\nHost: a\r\n${auth}\r\n`), 'two equal Host');
  assertRefused(await exchange(`${get}Host: a\r\n${auth}Authorization: Bearer wrong\r\n\r\n`), 'good, bad');
  assertRefused(await exchange(`${get}Host: a\r\nAuthorization: Bearer wrong\r\n${auth}\r\n`), 'bad, good');
  const same = await exchange(`${get}Host: a\r\n${auth}${auth}Connection: close\r\n\r\n`);
  assert.deepEqual(statusLines(same.data), ['HTTP/1.1 200 OK']);
  // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding is treated as faulty framing
  const body = '{"customer":{"external_id":"hdr_10"}}';
  const r = await exchange(`POST /api/v1/customers HTTP/1.0\r\nHost: a\r\n${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
  assertRefused(r, 'HTTP/1.0 with chunked');
  assert.equal(await customer('hdr_10'), 404);
});

// Found by a black-box audit: whitespace around a field value is not part of it (RFC 9110 5.5),
// and libmicrohttpd drops the leading whitespace only.
test('an Idempotency-Key with whitespace after it is the key without it', async () => {
  const body = '{"customer":{"external_id":"idem_ows"}}';
  const post = (key) => exchange(`POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\nIdempotency-Key: ${key}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  const first = await post('ows_k1 \t');
  assert.deepEqual(statusLines(first.data), ['HTTP/1.1 200 OK']);
  const replay = await post('ows_k1');
  assert.equal(replay.data.split('\r\n\r\n')[1], first.data.split('\r\n\r\n')[1]);
});

// Found by a black-box audit: RFC 9112 3.2.2: a server MUST accept a request-target in
// absolute-form; libmicrohttpd hands it on whole, and it was routed as a path (404).
test('a request-target in absolute-form is routed by its path', async () => {
  assert.equal((await t.api('/api/v1/customers', { method: 'POST', body: { customer: { external_id: 'abs_1' } } })).status, 200);
  const r = await exchange(`GET http://127.0.0.1/api/v1/customers/abs_1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${t.key}\r\nConnection: close\r\n\r\n`);
  assert.deepEqual(statusLines(r.data), ['HTTP/1.1 200 OK']);
  assert.match(r.data, /"external_id":"abs_1"/);
  const body = '{"event":{"transaction_id":"abs_tx","external_subscription_id":"none","code":"none"}}';
  const ev = await exchange(`POST HTTPS://example.com:8443/api/v1/events?x=1 HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  const direct = await exchange(`POST /api/v1/events?x=1 HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  assert.equal(ev.data.split('\r\n\r\n')[1], direct.data.split('\r\n\r\n')[1]); // the single-event route, as sent directly
});

// Writes `head`, then the chunked body `chunks` yields (Buffers, sent as they are) in two
// steps: `first` bytes of it, then, once the server has had time to read them, `more` bytes.
// Resolves with what came back before the second step and in all, once the server closes the
// connection (or soon after an answer, or 5 s after the body), and whether it closed it. The
// second step is small, so that the kernel takes it whole at once: a write refused (EPIPE) by a
// connection the server closed makes node drop it before it reads the answer waiting on it.
function streamChunked(head, chunks, first, more) {
  const { port, hostname } = new URL(t.url);
  return new Promise((resolve) => {
    let data = '';
    let early = null;
    let closed = false;
    const s = net.connect(Number(port), hostname);
    const timer = setTimeout(() => s.destroy(), 60000);
    s.on('data', (d) => {
      data += d;
      if (/\r\n\r\n\{.*\}$/s.test(data)) setTimeout(() => s.destroy(), 200); // answered
    });
    s.on('end', () => { closed = true; });
    s.on('close', () => { clearTimeout(timer); resolve({ data, early, closed }); });
    s.on('error', () => {});
    let left = Buffer.alloc(0); // of a chunk the first step cut
    const send = async (it, total) => {
      for (let sent = 0; sent < total && !s.destroyed;) {
        const value = left.length ? left : it.next().value;
        const part = value.subarray(0, total - sent);
        left = value.subarray(part.length);
        sent += part.length;
        if (!s.write(part)) await new Promise((r) => { s.once('drain', r); s.once('close', r); });
      }
    };
    s.on('connect', async () => {
      s.write(head);
      const it = chunks();
      await send(it, first);
      await new Promise((r) => setTimeout(r, 500));
      early = data;
      await send(it, more);
      clearTimeout(timer);
      setTimeout(() => s.destroy(), 5000);
    });
  });
}

// Found by a black-box audit: a chunked body past the limit was read and thrown away without
// any cap (a Content-Length one more than API_BODY_DISCARD_MAX, 64 MiB, past the limit is refused
// before it is read), so a client streaming 300 MiB heard 413 only at its end, and one chunk
// declaring 2^48 bytes kept the connection reading for as long as it sent. Each client here
// sends 64 KiB more than that and stops, its body unfinished: it is answered and closed.
test('a chunked body past the limit is a 413 that closes once 64 MiB past it are thrown away', async () => {
  const head = `POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
  const MiB = 1 << 20;
  const block = Buffer.alloc(MiB, 'x');
  const many = function* () { for (;;) yield Buffer.concat([Buffer.from(`${MiB.toString(16)}\r\n`), block, Buffer.from('\r\n')]); };
  const huge = function* () { yield Buffer.from('1000000000000\r\n'); for (;;) yield block; };
  for (const [label, chunks] of [['1 MiB chunks', many], ['one 2^48-byte chunk', huge]]) {
    // 65 MiB sent, the framing included: not yet 64 MiB past the limit, so still read
    const r = await streamChunked(head, chunks, 65 * MiB, 64 << 10);
    assert.equal(r.early, '', `${label}: answered before 64 MiB past the limit`);
    assert.deepEqual(statusLines(r.data), ['HTTP/1.1 413 Content Too Large'], label);
    assert.match(r.data, /\r\nConnection: close\r\n/i, label);
    assert.match(r.data, /\r\n\r\n\{"status":413,"error":"Payload Too Large","code":"body_too_large","message":"[^"]*1048576 bytes"\}$/, label);
    assert.ok(r.closed, `${label}: the server closed the connection`);
  }
  // a chunked body a little past the limit is still read whole and answered 413
  const two = Buffer.concat([Buffer.from(`${(2 * MiB).toString(16)}\r\n`), Buffer.alloc(2 * MiB, 'x'), Buffer.from('\r\n0\r\n\r\n')]);
  const small = await streamChunked(head, function* () { yield two; }, two.length, 0);
  assert.equal(statusLines(small.data).length, 1);
  assert.match(small.data, /^HTTP\/1\.1 413 /);
  assert.match(small.data, /"code":"body_too_large"/);
  assert.equal((await fetch(`${t.url}/health`)).status, 200);
});

// Found by a black-box audit, and documented (docs/API.md, Errors): a chunk-size line longer
// than what is left of the connection's 32 KiB cannot be read by libmicrohttpd 0.9.75, which
// answers its own HTML 500 and closes, before Tally sees a byte of the body. Nothing is stored.
test('a chunk-size line too long for the connection gets libmicrohttpd 500 and closes; nothing is stored', async () => {
  const body = '{"customer":{"external_id":"chunkline_1"}}';
  const head = `POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
  const line = (ext) => `${body.length.toString(16)};${'e'.repeat(ext)}\r\n${body}\r\n0\r\n\r\n`;
  const long = await exchange(head + line(33000));
  assert.deepEqual(statusLines(long.data), ['HTTP/1.1 500 Internal Server Error']);
  assert.match(long.data, /<html>/);
  assert.ok(long.closed);
  assert.equal(await customer('chunkline_1'), 404);
  const fits = await exchange(head.replace('chunked\r\n', 'chunked\r\nConnection: close\r\n') + line(1000));
  assert.deepEqual(statusLines(fits.data), ['HTTP/1.1 200 OK']);
  assert.equal(await customer('chunkline_1'), 200);
});

// Found by a black-box audit, and documented (docs/ARCHITECTURE.md, Limits): the 32 KiB hold
// the request line and headers and also libmicrohttpd's 56-byte record per header line, so many
// short headers reach the limit long before 32 KiB of text.
test('headers: one of 30 KiB or 300 short ones pass; 1,000 short ones (11 KB) are a 431', async () => {
  const get = (headers) => exchange(`GET /health HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`);
  const many = (n) => Array.from({ length: n }, (_, i) => `X${i}: v\r\n`).join('');
  assert.deepEqual(statusLines((await get(`X-Big: ${'a'.repeat(30 * 1024)}\r\n`)).data), ['HTTP/1.1 200 OK']);
  assert.deepEqual(statusLines((await get(many(300))).data), ['HTTP/1.1 200 OK']);
  const r = await get(many(1000));
  assert.equal(many(1000).length < 12000, true);
  assert.deepEqual(statusLines(r.data), ['HTTP/1.1 431 Request Header Fields Too Large']);
});
