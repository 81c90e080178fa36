# SPDX-License-Identifier: MIT
"""What the binaries export: coapgated offers plugins exactly the host functions declared
in <coapgate/plugin.h> (through daemon/coapgated.dynlist) and no other code, and a plugin
exports only its descriptor. Anything more would become ABI by accident."""

import re
import subprocess
from pathlib import Path

from conftest import COAPGATED, PLUGIN_DIR, SOURCE_DIR, TEST_PLUGIN_DIR

HOST_API = {"cg_emit", "cg_emit_tracked", "cg_wait_durable", "cg_log_full", "cg_conf_error", "cg_stop_fd", "cg_should_stop", "cg_sleep",
            "cg_instance_name", "cg_instance_topic", "cg_time_ms"}

# nm types of defined code: text (T), weak (W), indirect function (i).
CODE_TYPES = {"T", "W", "i"}
# Symbols every ELF executable or shared object defines.
ELF_BOILERPLATE = {"__bss_start", "_edata", "_end", "_init", "_fini", "_IO_stdin_used"}


def dynamic_symbols(path, *flags):
    """{name: nm type} of the dynamic symbol table of path."""
    out = subprocess.run(["nm", "-D", *flags, str(path)], capture_output=True, text=True,
                         check=True).stdout
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            symbols[parts[-1]] = parts[-2]
    return symbols


def header_host_functions():
    """The functions plugin.h declares for plugins to call."""
    text = (SOURCE_DIR / "daemon/include/coapgate/plugin.h").read_text()
    api = text[text.index("Host API"):]
    return set(re.findall(r"^[a-z][\w ]*?\**\b(cg_\w+)\(", api, flags=re.M))


def is_sanitizer(name):
    """Symbols an ASan build adds: copy relocations of the runtime's variables in the
    executable, and the ODR indicator ("__odr_asan.X") next to each exported global."""
    return name.startswith(("__asan", "__ubsan", "__lsan", "__sanitizer", "__odr_asan"))


def exported_by_plugin(path):
    return {name for name in dynamic_symbols(path, "--defined-only")
            if name not in ELF_BOILERPLATE and not is_sanitizer(name)}


def test_header_declares_the_host_api():
    assert header_host_functions() == HOST_API


def test_dynlist_lists_the_host_api():
    text = (SOURCE_DIR / "daemon/coapgated.dynlist").read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    assert set(re.findall(r"\b(\w+)\s*;", text)) == HOST_API


def test_daemon_exports_exactly_the_host_api():
    symbols = dynamic_symbols(COAPGATED, "--defined-only")
    code = {name for name, kind in symbols.items() if kind in CODE_TYPES}
    assert code == HOST_API, f"missing {HOST_API - code}, extra {code - HOST_API}"
    assert all(symbols[name] == "T" for name in HOST_API)

    # Data: only ELF boilerplate and copy relocations of libraries' variables (stdout,
    # optarg ... versioned "@GLIBC_x"): nothing of the daemon's own.
    data = {name for name, kind in symbols.items() if kind not in CODE_TYPES}
    own = {name for name in data
           if name not in ELF_BOILERPLATE and "@" not in name and not is_sanitizer(name)}
    assert own == set(), f"coapgated exports data symbols {own}"


def test_real_plugin_exports_only_its_descriptor():
    path = Path(PLUGIN_DIR) / "sysinfo.so"
    assert exported_by_plugin(path) == {"cg_plugin_descriptor"}
    # Data, not code: a const descriptor with pointers lives in relocated read-only data.
    assert dynamic_symbols(path, "--defined-only")["cg_plugin_descriptor"] in {"D", "R"}


def test_plugins_need_nothing_of_the_daemon_but_the_host_api():
    plugins = [Path(PLUGIN_DIR) / "sysinfo.so"]
    plugins += [p for p in sorted(Path(TEST_PLUGIN_DIR).glob("*.so"))
                if p.name != "abi_missing_host_symbol.so"]
    assert len(plugins) > 1
    for path in plugins:
        wanted = {name for name in dynamic_symbols(path, "--undefined-only")
                  if name.startswith("cg_")}
        assert wanted <= HOST_API, f"{path.name} needs {wanted - HOST_API}"
    # abi_good calls every host function (so the ABI test proves they all resolve).
    good = dynamic_symbols(Path(TEST_PLUGIN_DIR) / "abi_good.so", "--undefined-only")
    assert {name for name in good if name.startswith("cg_")} == HOST_API


def test_test_plugins_export_only_their_descriptor():
    for path in sorted(Path(TEST_PLUGIN_DIR).glob("*.so")):
        exported = exported_by_plugin(path)
        want = set() if path.name == "abi_no_descriptor.so" else {"cg_plugin_descriptor"}
        assert exported == want, f"{path.name} exports {exported}"
