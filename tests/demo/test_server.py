"""The app served on 127.0.0.1 and driven with gradio_client: the API, offline settings, concurrent users."""

import threading
import time
import urllib.error
import urllib.request

import pandas as pd
import pytest
from gradio_client import Client, handle_file


def video_input(path):
    return handle_file(str(path))


def support_input(rows):
    return {"headers": ["frame", "valence", "arousal"], "data": rows}


def test_offline_settings(server):
    blocks = server.blocks
    assert blocks.local_url.startswith("http://127.0.0.1:")
    assert blocks.share is False and blocks.share_url is None
    assert blocks.analytics_enabled is False
    assert blocks.max_file_size == 50 * 1024 * 1024
    assert blocks.allowed_paths == []
    # Files outside the app's cache are not served.
    for path in ("/etc/passwd", str(server.workdir / "examples" / "synthaffect_3.mp4")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{blocks.local_url}gradio_api/file={path}", timeout=10)
        assert err.value.code in (403, 404)


def test_uploads_over_the_size_limit_are_refused(server):
    import httpx

    too_big = b"\x00" * (server.blocks.max_file_size + 1)
    response = httpx.post(f"{server.blocks.local_url}gradio_api/upload", files={"files": ("big.mp4", too_big, "video/mp4")}, timeout=60)
    assert response.status_code == 413


def test_client_loads_suggests_and_labels(server, upload_clip):
    client = Client(server.blocks.local_url, verbose=False)
    _, _, status, support, message = client.predict(video_input(upload_clip), True, "", api_name="/load_video")
    assert "my clip.mp4" in status and "48 frames" in status and message == ""
    suggested, _ = client.predict("diverse", 0.1, support, api_name="/suggest")
    frames = [row[0] for row in suggested["data"]]
    assert len(frames) == 5 and frames[0] == 0
    rows = [[frame, 0.5, -0.25] for frame in frames[:2]]
    timeline, scatter, summary, csv_path, _ = client.predict(
        video_input(upload_clip), True, "", support_input(rows), "latest", api_name="/label"
    )
    results = pd.read_csv(csv_path)
    assert len(results) == 48 and results["is_support"].sum() == 2
    assert results.loc[frames[:2], "valence"].tolist() == [0.5, 0.5]
    assert "**2** support frames" in summary
    assert timeline["type"] == "matplotlib" and timeline["plot"].startswith("data:image/png;base64,")


def test_bad_upload_message_reaches_the_client(server, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    client = Client(server.blocks.local_url, verbose=False)
    *_, message = client.predict(video_input(text), False, "", api_name="/load_video")
    assert message.startswith("**Error:** notes.txt: not a video file")  # stays on the page, not only a toast


def test_several_users_label_at_once(server, upload_clip):
    """Four users press Label together: all get their own correct result, and a light request is not held up."""
    results, errors = {}, []

    def one_user(user):
        try:
            client = Client(server.blocks.local_url, verbose=False)
            rows = [[user, 0.1 * user, -0.1 * user], [30, 0.0, 0.0]]
            out = client.predict(video_input(upload_clip), True, "", support_input(rows), "latest", api_name="/label")
            results[user] = pd.read_csv(out[3])  # the session state is not an API output
        except Exception as err:  # collected and reported below, not lost in the thread
            errors.append(err)

    light = Client(server.blocks.local_url, verbose=False)
    _, _, _, support, _ = light.predict(video_input(upload_clip), True, "", api_name="/load_video")
    threads = [threading.Thread(target=one_user, args=(user,)) for user in range(1, 5)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    light_table, _ = light.predict("first", 0.1, support, api_name="/suggest")
    light_seconds = time.perf_counter() - started
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(results) == [1, 2, 3, 4]
    for user, table in results.items():
        assert table.loc[user, "valence"] == pytest.approx(0.1 * user) and bool(table.loc[user, "is_support"])
    assert [row[0] for row in light_table["data"]] == [0]
    assert light_seconds < 30, f"a user waited {light_seconds:.0f} s to browse while others were labelling"


def test_model_events_share_a_small_concurrency_limit(server, app_module):
    """Encoding and labelling run the model: at most MODEL_CONCURRENCY at once, the rest wait in the queue."""
    by_name = {fn.api_name: fn for fn in server.blocks.fns.values()}
    for name in ("load_video", "label"):
        assert by_name[name].concurrency_id == "model"
        assert by_name[name].concurrency_limit == app_module.MODEL_CONCURRENCY
    assert server.blocks._queue.max_size == 32
