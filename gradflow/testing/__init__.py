"""Testing tools: gradcheck (finite differences) and the device list for parameterized tests."""

from gradflow.testing.comparison import assert_close
from gradflow.testing.devices import available_devices, device_params
from gradflow.testing.gradcheck import GradcheckError, gradcheck

__all__ = ["GradcheckError", "assert_close", "available_devices", "device_params", "gradcheck"]
