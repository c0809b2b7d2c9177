"""The few-shot protocol on a user's own labelled videos: `mtclar evaluate --videos DIR --labels DIR`.

Each video of the folder has its full ground truth in the labels folder (by default the videos folder
itself) as ``<video stem>.csv`` with columns ``frame,valence,arousal``: ``frame`` is the 0-based
decoded frame index (as in a support CSV), values in the model's label range. A frame without a row (or with both
values empty) is unlabelled: it is never a support frame and never scored.

The protocol and the report are those of AFEW-VA (`mtclar_hf.labeling.evaluation`): each video becomes
one `LabelledClip`, encoded once through the face detector (videos carry no landmarks), its support
frames chosen among its labelled frames by the strategy, every other labelled frame with a face
scored. For cross-actor anchors each video is its own actor, unless an actors CSV (``video,actor``)
says which videos show the same person.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputFileError, LabelError
from .evaluation import LabelledClip, Protocol, evaluate_labelled_clips
from .support import read_label_csv
from .tables import read_csv_table
from .video import check_unique_stems, list_video_files


@dataclass
class LabelledVideo:
    """A user's video and its ground truth ({frame: (valence, arousal)}), read but not yet decoded."""

    path: Path
    labels_path: Path
    labels: dict[int, tuple[float, float]]
    actor: str


def read_actors_csv(path) -> dict[str, str]:
    """{video name or stem: actor} from a CSV with columns `video,actor`."""
    table = read_csv_table(path, "actors CSV", ("video", "actor"), dtype=str)
    actors = {}
    for line, (video, actor) in zip(table.index + 2, zip(table["video"], table["actor"])):
        if not isinstance(video, str) or not isinstance(actor, str) or not video.strip() or not actor.strip():
            raise InputFileError(path, f"line {line}: needs a video and an actor")
        actors[video.strip()] = actor.strip()
    return actors


def list_labelled_videos(
    videos_dir, labels_dir=None, actors: dict[str, str] | None = None, label_range=None
) -> list[LabelledVideo]:
    """Every video of `videos_dir` (name order) with its `<stem>.csv` from `labels_dir` (default: `videos_dir`),
    each label CSV read and checked now, before anything is decoded."""
    videos_dir = Path(videos_dir)
    labels_dir = Path(labels_dir) if labels_dir is not None else videos_dir
    if not videos_dir.is_dir():
        raise InputFileError(videos_dir, "videos folder not found")
    if not labels_dir.is_dir():
        raise InputFileError(labels_dir, "labels folder not found")
    videos = list_video_files(videos_dir)
    if not videos:
        raise InputFileError(videos_dir, "no video files in this folder")
    check_unique_stems(videos_dir, videos, "which labels go with which?")
    stems = [video.stem for video in videos]
    actors = actors or {}
    unknown = sorted(set(actors) - {v.name for v in videos} - set(stems))
    if unknown:
        raise ConfigError(f"actors CSV names video(s) {', '.join(unknown[:5])} not found in {videos_dir}")
    found = []
    for video in videos:
        labels_path = labels_dir / f"{video.stem}.csv"
        if not labels_path.is_file():
            raise InputFileError(
                labels_path, f"no label CSV for {video.name} (each video needs <stem>.csv in {labels_dir})"
            )
        actor = actors.get(video.name, actors.get(video.stem, video.stem))
        found.append(LabelledVideo(video, labels_path, read_label_csv(labels_path, label_range), actor))
    return found


def labelled_clip(video: LabelledVideo, encoded) -> LabelledClip:
    """The protocol's view of an encoded video: its labels as (N,) arrays, NaN on unlabelled frames."""
    last = encoded.num_frames - 1
    beyond = sorted(frame for frame in video.labels if frame > last)
    if beyond:
        raise LabelError(f"{video.labels_path}: frame {beyond[0]} is past the last frame of {video.path.name} ({last})")
    valence, arousal = np.full(encoded.num_frames, math.nan), np.full(encoded.num_frames, math.nan)
    for frame, (v, a) in video.labels.items():
        valence[frame], arousal[frame] = v, a
    labelled = np.isfinite(valence)
    # The user labelled these frames whatever the detector makes of them: the strategy picks among them, and a
    # support frame without a face is counted and left out, as `mtclar label` does.
    return LabelledClip(video.path.stem, video.actor, encoded, valence, arousal, annotated_faces=labelled)


def encode_videos(labeler, videos: Sequence[LabelledVideo], progress: bool = False) -> list[LabelledClip]:
    """Encode every video once (through the labeller's face detector) and pair it with its labels."""
    from tqdm.auto import tqdm

    clips = []
    for video in tqdm(list(videos), desc="encoding videos", unit="video", disable=not progress):
        clips.append(labelled_clip(video, labeler.encode(video.path)))
    return clips


def evaluate_videos(labeler, videos: Sequence[LabelledVideo], protocol: Protocol | None = None, progress: bool = False) -> dict:
    """The whole protocol on a user's labelled videos (`list_labelled_videos`): the report `evaluate_afew_va` gives."""
    protocol = protocol or Protocol()
    if labeler.detector is None:
        raise ConfigError("evaluating videos needs a labeller with a face detector: videos carry no landmarks")
    if not videos:
        raise ConfigError("no video to evaluate")
    clips = encode_videos(labeler, videos, progress=progress)
    report = evaluate_labelled_clips(labeler.model, clips, protocol, faces="detector")
    report["protocol"]["support_candidates"] = "the labelled frames of each video"
    own = all(video.actor == video.path.stem for video in videos)
    report["protocol"]["actors"] = "each video is its own actor" if own else "from the actors CSV"
    return report
