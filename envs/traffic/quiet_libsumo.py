"""``import libsumo`` without its console warning, for the SUMO workers' forkserver to preload.

libsumo prints a warning at import when the installed pyarrow (Ray brings one) is not the version
it was built against; it uses pyarrow only for its own data exports, which ctrlgym never calls.
"""

import contextlib
import io

with contextlib.redirect_stdout(io.StringIO()):
    try:
        import libsumo  # noqa: F401
    except ImportError:  # the traci backend needs no libsumo
        pass
