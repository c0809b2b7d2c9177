"""`mtclar demo` as a user starts it: a real process serving the page, stopped with a signal, cleaning up."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mtclar_demo_serves_and_cleans_up(tiny_model_dir, tmp_path):
    port = free_port()
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    env.pop("GRADIO_TEMP_DIR", None)  # the command puts Gradio's cache inside its own folder
    process = subprocess.Popen(
        [sys.executable, "-m", "mtclar_hf", "demo", "--model", str(tiny_model_dir), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        first_line = process.stdout.readline()
        match = re.search(r"temporary files in (\S+) \(removed on exit\)", first_line)
        assert match, first_line
        workdir = Path(match.group(1))
        assert workdir.is_relative_to(tmp_path)
        deadline = time.monotonic() + 120
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "the demo did not start within 120 s"
                time.sleep(0.5)
        assert "MT-CLAR few-shot video labelling" in page
        assert (workdir / "examples" / "synthaffect_3.mp4").is_file()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not workdir.exists()
    finally:
        if process.poll() is None:
            process.kill()
