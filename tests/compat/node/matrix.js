// memjs against memcloud, driven by tests/compat/test_memjs.py.
// Env: MEMCLOUD_SERVER, MEMCLOUD_USERNAME, MEMCLOUD_PASSWORD, MEMCLOUD_RO_USERNAME,
// MEMCLOUD_RO_PASSWORD. Prints "ok <check>" per check; exits 1 on the first failure.
'use strict';
const assert = require('assert');
const memjs = require('memjs');

const server = process.env.MEMCLOUD_SERVER;
const options = { retries: 0, timeout: 2, conntimeout: 2, logger: { log() {} } };

function client(username, password) {
  return memjs.Client.create(server, { ...options, username, password });
}

// memjs 1.3 has no gets/cas: send them through its own authenticated connection.
function perform(c, key, opcode, extras, value, cas) {
  c.incrSeq();
  const request = memjs.Utils.makeRequestBuffer(opcode, key, extras, value, c.seq);
  if (cas) request.writeBigUInt64BE(cas, 16);
  return new Promise((resolve, reject) => {
    c.perform(key, request, c.seq, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

async function basic() {
  const c = client(process.env.MEMCLOUD_USERNAME, process.env.MEMCLOUD_PASSWORD);
  try {
    assert.strictEqual(await c.set('mj:key', 'hello', {}), true);
    assert.strictEqual((await c.get('mj:key')).value.toString(), 'hello');
    assert.strictEqual(await c.delete('mj:key'), true);
    assert.strictEqual((await c.get('mj:key')).value, null);
    assert.strictEqual(await c.set('mj:n', '5', {}), true);
    assert.strictEqual((await c.increment('mj:n', 3, {})).value, 8);
    assert.strictEqual((await c.decrement('mj:n', 10, {})).value, 0);
    assert.strictEqual((await c.increment('mj:fresh', 1, { initial: 41 })).value, 41);
    const got = await perform(c, 'mj:n', 0x00, '', '', 0n);
    const cas = got.header.cas.readBigUInt64BE(0);
    assert.ok(cas > 0n);
    const extras = Buffer.alloc(8);
    const good = await perform(c, 'mj:n', 0x01, extras, '7', cas);
    assert.strictEqual(good.header.status, 0);
    const stale = await perform(c, 'mj:n', 0x01, extras, '9', cas);
    assert.strictEqual(stale.header.status, 2);
    assert.strictEqual((await c.get('mj:n')).value.toString(), '7');
    assert.strictEqual(await c.touch('mj:n', 100), true);
    assert.strictEqual(await c.touch('mj:missing', 100), false);
    const flushed = await c.flush();
    assert.ok(Object.values(flushed).every((v) => v === true));
    assert.strictEqual((await c.get('mj:n')).value, null);
    console.log('ok basic');
  } finally {
    c.close();
  }
}

async function wrongPassword() {
  const c = client(process.env.MEMCLOUD_USERNAME, 'not-the-password');
  try {
    await assert.rejects(c.set('mj:x', '1', {}));
    console.log('ok wrong-password');
  } finally {
    c.close();
  }
}

async function readOnly() {
  const writer = client(process.env.MEMCLOUD_USERNAME, process.env.MEMCLOUD_PASSWORD);
  const reader = client(process.env.MEMCLOUD_RO_USERNAME, process.env.MEMCLOUD_RO_PASSWORD);
  try {
    assert.strictEqual(await writer.set('mj:ro', 'kept', {}), true);
    assert.strictEqual((await reader.get('mj:ro')).value.toString(), 'kept');
    await assert.rejects(reader.set('mj:ro', 'changed', {}), /Item not stored/);
    await assert.rejects(reader.flush());
    assert.strictEqual((await writer.get('mj:ro')).value.toString(), 'kept');
    console.log('ok read-only');
  } finally {
    writer.close();
    reader.close();
  }
}

(async () => {
  await basic();
  await wrongPassword();
  await readOnly();
})().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
