"""An LSL configuration that keeps stream discovery on this machine (loopback only), for the tests
and the benchmarks: liblsl reads the file named by ``LSLAPICFG`` once, at its first use."""
import atexit
import os
import shutil
import tempfile

LSL_CONFIG = """[ports]
IPv6 = disable
[multicast]
ResolveScope = machine
[lab]
KnownPeers = {127.0.0.1}
[log]
level = -3
"""


def write_machine_only_config(prefix: str) -> str:
    """A new ``lsl_api.cfg`` holding :data:`LSL_CONFIG` in a temporary folder removed at exit; its path."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = os.path.join(folder, "lsl_api.cfg")
    with open(path, "w") as handle:
        handle.write(LSL_CONFIG)
    return path
