"""ctrlgym environments, one sub-package per family; importing registers them.

Families whose simulator is an optional extra (traffic needs SUMO) register only when it is
installed; otherwise their ids are known and name the extra to install.
"""

import importlib.util

from ctrlgym.envs import beamforming, fastslow

from ctrlgym.registry import mark_unavailable

__all__ = ["beamforming", "fastslow"]

if importlib.util.find_spec("sumo") is not None or importlib.util.find_spec("libsumo") is not None:
    from ctrlgym.envs import traffic  # noqa: F401

    __all__.append("traffic")
else:
    mark_unavailable(["ctrlgym/TrafficSignalEnv-v0", "ctrlgym/SingleIntersection-v0", "ctrlgym/TrafficTwinEnv-v0", "ctrlgym/SingleIntersectionTwin-v0"], "traffic")

if importlib.util.find_spec("sklearn") is not None:
    from ctrlgym.envs import mixup  # noqa: F401

    __all__.append("mixup")
else:
    mark_unavailable(["ctrlgym/MixupPolicyEnv-v0"], "mixup")
