// SPDX-License-Identifier: MIT
//
// The Node.js side of the uplink benchmark (tests/bench/uplink_bench.py): the 1NCE
// documentation's client (node-coap-client@2.1.0) used as its example uses it
// (onboard.js), sending one JSON reading per confirmable POST, one after the other,
// for DURATION seconds:
//
//   node bench.js HOST COAP_PORT COAPS_PORT TOPIC DURATION [SEED]
//
// Bootstrap as in the example (tryToConnect, GET /bootstrap on plain CoAP, the PSK
// from the answer), then POST {"timestamp":…,"temp":…,"hum":…,"pressure":…} to
// coaps://HOST:COAPS_PORT/?t=TOPIC with the example's options (keepAlive, confirmable,
// no retransmission), awaiting each answer before the next request. The values are
// those of the `numbers` test plugin (tests/plugins/numbers.c), reading k with the
// same arithmetic; the timestamp is the time the reading is made.
//
// Prints one line of JSON on stdout at the end:
//   {"count":N,"elapsed_s":S,"rate":N/S,"codes":{"2.04":N,…},"bootstrap_s":B,"first_ms":…,"last_ms":…}
// count is the POSTs answered 2.04; elapsed_s runs from the first POST to the last
// answer. Exit status 1 when bootstrap or the DTLS connection fails.

const coap = require("node-coap-client").CoapClient;

const argv = process.argv.slice(2);
if (argv.length < 5) {
  console.error("usage: node bench.js HOST COAP_PORT COAPS_PORT TOPIC DURATION [SEED]");
  process.exit(64);
}
const [host, coapPort, coapsPort, topic] = argv;
const duration = Number(argv[4]);
const seed = Number(argv[5] || 1) >>> 0;

const options = {
  keepAlive: true, // as in the example
  confirmable: true,
  retransmit: false,
};

// numbers.c: numbers_hash() and numbers_values(), in 32-bit unsigned arithmetic.
function numbersHash(seed, k) {
  let x = (k + Math.imul(seed, 0x9e3779b9)) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x = (x ^ (x >>> 13)) >>> 0;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x;
}

function numbersValues(seed, k) {
  const h = numbersHash(seed, k);
  const t = k % 1000000;
  return {
    temp: (2150 + Math.round(250 * Math.sin(t / 5000)) + (h % 21) - 10) / 100,
    hum: (450 + Math.round(80 * Math.sin(t / 7000 + 1)) + ((h >>> 8) % 7) - 3) / 10,
    pressure: (101325 + Math.round(400 * Math.sin(t / 20000 + 2)) + ((h >>> 16) % 11) - 5) / 100,
  };
}

async function tryToConnect(url) {
  const res = await coap.tryToConnect(url);
  if (res !== true) {
    throw new Error(`Failed to connect to coap server ${url}: ${res}`);
  }
}

async function bootstrap() {
  const url = `coap://${host}:${coapPort}/bootstrap`;
  await tryToConnect(url);
  const result = await coap.request(url, "get", options);
  const payload = result.payload?.toString();
  if (result.code.toString() !== "2.05") {
    throw new Error(`bootstrap answered ${result.code.toString()}: ${payload}`);
  }
  const [clientIdentity, preSharedKey] = payload.split(",");
  return { clientIdentity, preSharedKey };
}

(async () => {
  const codes = {};
  let count = 0;
  let first = 0;
  let last = 0;
  const t0 = Date.now();
  try {
    const { clientIdentity, preSharedKey } = await bootstrap();
    const url = `coaps://${host}:${coapsPort}/?t=${topic}`;
    coap.setSecurityParams(url, { psk: { [clientIdentity]: preSharedKey } });
    await tryToConnect(url);
    const bootstrapS = (Date.now() - t0) / 1000;

    first = Date.now();
    const end = first + duration * 1000;
    for (let k = 0; Date.now() < end; k++) {
      const v = numbersValues(seed, k);
      const reading = { timestamp: Date.now(), temp: v.temp, hum: v.hum, pressure: v.pressure };
      const result = await coap.request(url, "post", Buffer.from(JSON.stringify(reading)), options);
      const code = result.code.toString();
      codes[code] = (codes[code] || 0) + 1;
      if (code === "2.04") {
        count++;
      }
    }
    last = Date.now();
    const elapsed = (last - first) / 1000;
    console.log(JSON.stringify({
      count, elapsed_s: elapsed, rate: count / elapsed, codes, bootstrap_s: bootstrapS,
      first_ms: first, last_ms: last,
    }));
  } catch (error) {
    console.error("bench.js:", error);
    process.exitCode = 1;
  } finally {
    coap.reset();
  }
})();
