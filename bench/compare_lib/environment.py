"""The machine side of the comparison: building sgdwalk, the peers' virtual environment, probes."""

import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"

# Python snippets that succeed when a peer's package works on the CPU / on an NVIDIA GPU.
CPU_PROBES = {"jax": "import jax", "torch": "import torch"}
GPU_PROBES = {"jax": "import jax; jax.devices('gpu')",
              "torch": "import torch; assert torch.cuda.is_available()",
              "cupy": "import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0"}

# pip requirements per peer package, for machines without and with an NVIDIA GPU. torch on a
# CPU-only machine is opt-in (--install all): PyPI's wheel bundles CUDA libraries (~3 GB).
CPU_PACKAGES = {"jax": ["jax[cpu]"]}
CPU_OPTIONAL_PACKAGES = {"torch": ["torch"]}
GPU_PACKAGES = {"jax": ["jax[cuda12]"], "torch": ["torch"], "cupy": ["cupy-cuda12x"]}


class BuildError(RuntimeError):
    """sgdwalk could not be configured or built."""


def log_tail(path, lines=25):
    """The last lines of a log file, for error messages."""
    text = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def build_sgdwalk(repo, jobs, log_dir):
    """Configure (Release) and build sgdwalk in repo/build; return the CLI's path.

    Raises BuildError with the tail of the build log when either step fails or the CLI is missing.
    """
    build_dir = repo / "build"
    log = Path(log_dir) / "sgdwalk-build.log"
    steps = [
        ["cmake", "-S", str(repo), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"],
        ["cmake", "--build", str(build_dir), "-j", str(jobs), "--target", "sgdwalk"],
    ]
    with open(log, "w") as out:
        for command in steps:
            out.write("$ " + " ".join(command) + "\n")
            out.flush()
            if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                raise BuildError(f"`{' '.join(command)}` failed; end of {log}:\n{log_tail(log)}")
    binary = build_dir / "sgdwalk"
    if not binary.exists():
        raise BuildError(f"the build finished but {binary} does not exist (see {log})")
    return binary


def check_sgdwalk(binary):
    """Raise BuildError unless `binary info` runs."""
    if not Path(binary).exists():
        raise BuildError(f"{binary} does not exist")
    result = subprocess.run([str(binary), "info"], capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"`{binary} info` failed:\n{result.stdout}{result.stderr}")


def has_nvidia_gpu():
    """True when nvidia-smi lists at least one GPU."""
    if shutil.which("nvidia-smi") is None:
        return False
    result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return result.returncode == 0 and "GPU" in result.stdout


def works(python, probe):
    """True when `python` runs the snippet `probe` without error."""
    return subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0


def numpy_version(python):
    """numpy's version as seen by `python`."""
    return subprocess.run([str(python), "-c", "import numpy; print(numpy.__version__)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def ensure_venv(venv, install, gpu, say):
    """Create the peers' venv (with Debian's site packages) and install the peer packages.

    install: "none", "auto" (what suits this machine, torch only with a GPU) or "all".
    numpy is pinned to the system's version so that the venv never shadows Debian's numpy.
    Returns the venv's python (or the system python when install is "none" and there is no venv).
    """
    python = venv / "bin" / "python"
    if install == "none":
        return python if python.exists() else Path(SYSTEM_PYTHON)
    if not python.exists():
        say(f"creating {venv} (--system-site-packages)")
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", str(venv)],
                       check=True)
    wanted = dict(GPU_PACKAGES if gpu else CPU_PACKAGES)
    if install == "all" and not gpu:
        wanted.update(CPU_OPTIONAL_PACKAGES)
    probes = GPU_PROBES if gpu else CPU_PROBES
    missing = {module: specs for module, specs in wanted.items()
               if not works(python, probes[module])}
    if not missing:
        return python
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write(f"numpy=={numpy_version(python)}\n")
    for module, specs in missing.items():
        say(f"installing {' '.join(specs)} into {venv}")
        result = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                                 "-c", constraints.name, *specs],
                                capture_output=True, text=True)
        if result.returncode != 0:
            say(f"  could not install {module}; its peer is skipped:\n"
                + "\n".join(result.stderr.splitlines()[-5:]))
    os.unlink(constraints.name)
    return python


def machine_info(gpu):
    """CPU, core count, GPU names and OS, for the results file."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0]}
    if gpu:
        result = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                                 "--format=csv,noheader"], capture_output=True, text=True)
        info["gpus"] = result.stdout.strip().splitlines()
    return info
