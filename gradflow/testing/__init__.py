"""Testing tools: gradcheck (finite differences) and the device list for parameterized tests."""

from gradflow.testing.devices import available_devices, device_params
from gradflow.testing.gradcheck import GradcheckError, gradcheck

__all__ = ["GradcheckError", "available_devices", "device_params", "gradcheck"]
