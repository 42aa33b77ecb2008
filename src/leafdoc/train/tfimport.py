"""Import TensorFlow without its start-up noise on a machine that has no GPU.

On a CPU-only machine, importing TensorFlow writes "Could not find cuda drivers", "This TensorFlow binary is
optimized to use..." and, at the first look for devices, "failed call to cuInit: INTERNAL: CUDA error" to the
process's stderr from C++ (some before TF_CPP_MIN_LOG_LEVEL is read). A user training on a laptop reads them as
failures. Where no NVIDIA driver is loaded they say nothing useful, so leafdoc's commands import TensorFlow here
first, with file descriptor 2 pointed at /dev/null for the import and the device look-up only. With a GPU driver
present nothing is hidden: there those lines can explain why a GPU is not used."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

NVIDIA_DRIVER = Path("/proc/driver/nvidia")


def gpu_driver_present() -> bool:
    return NVIDIA_DRIVER.exists() or any(Path("/dev").glob("nvidia[0-9]*"))


@contextlib.contextmanager
def native_stderr_silenced():
    """fd 2 to /dev/null (C++ writes there directly; sys.stderr alone would not catch it), restored after."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (once) and look for GPUs, silently where there is no GPU driver. INFO and WARNING lines
    from TensorFlow's C++ stay hidden afterwards unless TF_CPP_MIN_LOG_LEVEL says otherwise; errors still show."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    quiet = native_stderr_silenced() if not gpu_driver_present() else contextlib.nullcontext()
    with quiet:
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
