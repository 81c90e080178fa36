# SPDX-License-Identifier: MIT
"""The 1NCE documentation's own Node.js example (tests/emulator/node/onboard.js, with
node-coap-client@2.1.0) against nce-emulator: bootstrap over plain CoAP, DTLS with the
PSK it got, POST to /?t=sometesttopic, and the message arriving in the sink and over
MQTT on ICCID/sometesttopic.

The node modules are installed by scripts/install-node-deps into COAPGATE_NODE_DIR
(ctest sets it to <build>/node); without them this test fails rather than skips."""

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import nce
from nce import emulator, mosquitto, mqtt_subscriber  # noqa: F401 (fixtures)

ICCID = "8988228066600000001"
IMSI = "901405100000001"
TOPIC = "sometesttopic"
ONBOARD_JS = Path(__file__).resolve().parents[1] / "emulator" / "node" / "onboard.js"
NODE = "node"


def node_modules():
    node_dir = os.environ.get("COAPGATE_NODE_DIR", "")
    if not node_dir:
        pytest.fail("COAPGATE_NODE_DIR is not set: run through ctest, or set it to a "
                    "directory prepared with scripts/install-node-deps DIR")
    modules = Path(node_dir) / "node_modules"
    package = modules / "node-coap-client" / "package.json"
    if not package.is_file():
        pytest.fail(f"{package} is missing: install the Node.js dependencies with "
                    f"scripts/install-node-deps {node_dir}")
    version = json.loads(package.read_text())["version"]
    assert version == "2.1.0", f"node-coap-client {version} in {modules}, expected 2.1.0"
    return modules


def test_documented_node_example_onboards_and_sends(emulator, mosquitto, mqtt_subscriber,
                                                   tmp_path):
    modules = node_modules()
    sub = mqtt_subscriber(mosquitto)
    # Node cannot choose its source address, so the device is 127.0.0.1.
    e = emulator([dict(iccid=ICCID, address="127.0.0.1", imsi=IMSI)],
                 ["--mqtt", f"127.0.0.1:{mosquitto.port}"])
    mosquitto.wait_client(exclude={nce.SUB_ID, nce.PROBE_ID})

    env = dict(os.environ, NODE_PATH=str(modules))
    r = subprocess.run([NODE, str(ONBOARD_JS), "127.0.0.1", str(e.coap_port),
                        str(e.coaps_port), TOPIC],
                       cwd=modules.parent, env=env, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    print(out)
    assert r.returncode == 0, out
    assert f"Boostrap payload: {ICCID}," in r.stdout, out
    psk = re.search(r"^Pre-shared key: (\S+)$", r.stdout, re.M).group(1)
    assert re.fullmatch(r"[A-Za-z0-9]{24}", psk), psk
    assert f"Coap endpoint: coaps://127.0.0.1:{e.coaps_port}" in r.stdout, out
    assert "Status: 2.04" in r.stdout, out
    assert "Coap message sent" in r.stdout, out
    message = re.search(r"^Message: (.*)$", r.stdout, re.M).group(1)
    assert json.loads(message)["description"] == "Example message"

    lines = e.wait_sink(1)
    assert len(lines) == 1, lines
    ev = lines[0]
    assert ev["type"] == "TELEMETRY_DATA" and ev["source"] == "COAP"
    assert ev["device"]["iccid"] == ICCID and ev["device"]["ip"] == "127.0.0.1"
    assert ev["payload"]["topic"] == TOPIC
    assert ev["payload"]["encoding"] == "base64"
    assert ev["payload"]["value"] == base64.b64encode(message.encode()).decode()
    assert ev["coap"]["dtls"] is True

    msgs = sub.wait_messages(1)
    assert len(msgs) == 1, msgs
    topic, payload = msgs[0]
    assert topic == f"{ICCID}/{TOPIC}"
    assert json.loads(payload) == ev

    s = e.stats()
    assert s["bootstraps"]["by_device"].get(ICCID) == 1, s
    assert s["handshakes"]["by_device"].get(ICCID, 0) >= 1, s
    assert s["accepted"] == 1 and s["mqtt"]["published"] == 1, s
