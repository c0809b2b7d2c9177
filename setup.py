"""Packaging for mtclar_hf. Install torch==2.13.0 first (see README / Makefile): an
unpinned torch from PyPI pulls a multi-GB CUDA build, and torchvision must never come in."""
import ast
import re
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ONNX_REQUIRES = ["onnxruntime>=1.17", "onnx>=1.15"]

version = re.search(r'__version__ = "([^"]+)"', Path("mtclar_hf/__init__.py").read_text()).group(1)


def shipped_folders() -> dict:
    """`mtclar_hf.resources.SHIPPED`, read without importing the package (that needs torch)."""
    tree = ast.parse(Path("mtclar_hf/resources.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "SHIPPED")
    return ast.literal_eval(node.value)


class BuildWithShippedFiles(build_py):
    """Copy the recipes, card templates and demo app from their top-level folders into the package, so a
    wheel (a regular install) carries them; an editable install reads the folders themselves."""

    def run(self):
        super().run()
        for kind, (source, pattern) in shipped_folders().items():
            target = Path(self.build_lib) / "mtclar_hf" / kind
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(Path(source).glob(pattern)):
                self.copy_file(str(path), str(target / path.name))


setup(
    name="mtclar_hf",
    version=version,
    description="MT-CLAR (few-shot multi-task contrastive affect labelling) as a Hugging Face-native library",
    long_description=Path("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["mtclar_hf", "mtclar_hf.*"]),
    include_package_data=True,
    package_data={"mtclar_hf": ["evaluate_metrics/*/*.py"]},
    install_requires=[
        "torch>=2.4",  # 2.13.0 CPU build is installed first by the Makefile
        "transformers>=5.17,<6",
        "datasets>=4.0",
        "huggingface-hub>=1.0",
        "accelerate>=1.10",
        "evaluate>=0.4.6",
        "safetensors>=0.6",
        "gradio>=6.0,<7",
        "av>=14",
        "opencv-python-headless>=4.8,<5",
        # Faces without landmarks (a user's video): dlib's HOG detector and 68-point shape predictor, whose model
        # file ships in face-recognition-models (CC0 package; the model's 300-W training data: docs/FACES.md).
        "dlib-bin>=19.24",
        "face-recognition-models>=0.3",
        "numpy>=1.26",
        "pillow>=10",
        "pyyaml>=6",
        "matplotlib>=3.8",  # --plot and README figures
        "tensorboard>=2.15",  # training logs (Accelerate's tensorboard tracker)
    ],
    extras_require={
        # `mtclar export-onnx` and `--backend onnx`: onnxruntime runs the encoder (CPU build; install
        # onnxruntime-gpu instead for the CUDA execution provider), onnx writes the exported graphs.
        "onnx": ONNX_REQUIRES,
        "dev": [
            *ONNX_REQUIRES,  # the export and backend-parity tests run in CI
            "pytest>=8",
            "pytest-xdist>=3.5",
            "pytest-timeout>=2.3",
            "ruff>=0.6",
            "hypothesis>=6.100",
            "playwright>=1.50",
            "scipy>=1.11",  # independent metric implementation in tests
        ],
    },
    entry_points={"console_scripts": ["mtclar=mtclar_hf.cli:main"]},
    cmdclass={"build_py": BuildWithShippedFiles},
)
