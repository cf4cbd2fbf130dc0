"""Build and install HMASD: the Python packages and the C++ extension hmasd._core (via CMake)."""
import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent.resolve()


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configure and build CMakeLists.txt, placing the module where setuptools expects it."""

    def build_extension(self, ext: Extension) -> None:
        import pybind11

        out_dir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        cfg = "Debug" if self.debug else "Release"
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DCMAKE_BUILD_TYPE={cfg}",
        ]
        # The CUDA kernel is opt-in: HMASD_CUDA=1 and a CUDA toolkit must both be present.
        if os.environ.get("HMASD_CUDA") == "1":
            args.append("-DHMASD_CUDA=ON")
        subprocess.run(["cmake", str(ROOT), *args], cwd=build_dir, check=True)
        jobs = str(os.cpu_count() or 1)
        subprocess.run(["cmake", "--build", ".", "--config", cfg, "-j", jobs], cwd=build_dir, check=True)


setup(
    name="hmasd",
    version="0.1.0",
    description="Hierarchical Multi-Agent Skill Discovery (Yang et al., NeurIPS 2023) on PettingZoo",
    python_requires=">=3.10",
    packages=["hmasd", "hmasd.models", "hmasd.sweep", "hmasd_envs"],
    package_dir={"hmasd": "hmasd", "hmasd_envs": "hmasd_envs"},
    package_data={"hmasd": ["_core.pyi", "py.typed"]},
    ext_modules=[CMakeExtension("hmasd._core")],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=[
        "torch==2.13.0",
        "numpy>=1.24",
        "pettingzoo==1.27.*",
        "mpe2",
        "tensorboard",
        "structlog",
        "pyyaml",
        "pillow",
        "tqdm",
    ],
    extras_require={
        "test": ["pytest", "pytest-benchmark", "pytest-timeout"],
        "plot": ["matplotlib"],
        # The paper's Overcooked benchmark through JaxMARL (JAX on the CPU, about 1 GB).
        "overcooked": ["jaxmarl==0.2.0"],
        # Env workers as Ray actors (backend: ray) and multi-seed sweeps (hmasd-sweep), on one machine or a cluster.
        "ray": ["ray==2.60.0"],
    },
    entry_points={
        "console_scripts": [
            "hmasd-train=hmasd.train:main",
            "hmasd-eval=hmasd.evaluate:main",
            "hmasd-sweep=hmasd.sweep.cli:main",
        ]
    },
    zip_safe=False,
)
