"""The few-shot protocol on AFEW-VA (the paper's protocol), for every anchor mode and both baselines.

For each clip: every frame is encoded once, cropped around the AFEW-VA landmarks (``faces="landmarks"``) or
around landmarks predicted inside a face detector's box, as on a user's video (``faces="detector"``: the
annotation's landmarks are ignored). The support frames are chosen by a strategy among the frames the
annotation's landmarks frame, so both paths use the same support frames (a support frame where the
detector finds no face is left out of the anchors, as `mtclar label` does by default) (reference: ``every-k`` with k = 20, the first frame plus every 20th); every
other frame is a query, labelled by each anchor mode and by the ``hold`` and ``interpolate``
baselines. Metrics (`mtclar_hf.metrics`) are computed over QUERY frames only (support frames carry
their ground truth and would flatter every method), per video and pooled over all query frames of
all videos; ``video_mean`` is the plain mean of the per-video numbers.

A per-video figure can be undefined (`mtclar_hf.metrics`): PCC where the true or the predicted labels
are constant over the clip's query frames (a calm clip), CCC where both are and agree, any figure
with no query frame. It is ``null`` in ``per_video`` and left out of the mean, and
``video_mean_skipped[mode][metric]`` counts the videos left out (0 when none), so
``video_mean[mode][metric]`` is the mean over ``num_videos - video_mean_skipped[mode][metric]``
videos (``null`` when that is none).

Two anchor sources are reported side by side:

* ``same_video``: anchors are the clip's own support frames with their ground-truth labels.
* ``cross_actor``: the same support positions and times, but each anchor's embedding and label come
  from the PARTNER clip, the next clip in clip-id order (cyclically) whose actor differs; the anchor
  at position s of a clip of N frames is the partner's frame round(s * (M - 1) / (N - 1)) of its M
  frames. Only the identity (and content) of the anchors changes, not their timing, which isolates
  the effect of anchors from another person (the reference's known weakness).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..metrics import affect_metrics
from .anchors import ALL_MODES, AUTO_MODE, BASELINES, Anchors, predict_from_anchors
from .labeler import EncodedVideo, FewShotVideoLabeler
from .support import active_frames, budget_count, select_support
from .video import DEFAULT_FOLDER_FPS, VideoFrame

ACTIVE_ROUNDS = 3  # after the first frame, `--strategy active` spends its budget in this many rounds


@dataclass
class Protocol:
    """How the protocol picks support frames (`strategy` with `k`, `budget`, `seed`), which modes it scores (both
    baselines are always added), whether it also scores cross-actor anchors, and the anchor modes' options
    (`max_anchors`, `time_scale`, `similarity_temperature`)."""

    strategy: str = "every-k"
    modes: Sequence[str] = (AUTO_MODE,)
    k: int = 20
    budget: float = 0.06
    seed: int = 0
    cross_actor: bool = True
    anchor_options: dict = field(default_factory=dict)

    def __post_init__(self):
        """A one-line error, at once, for a setting the protocol cannot run."""
        unknown = [mode for mode in self.scored_modes if mode not in ALL_MODES]
        if unknown:
            raise ConfigError(f"unknown anchor mode(s) {unknown} (choose from {', '.join(ALL_MODES)})")
        if self.strategy == "given":
            raise ConfigError("--strategy given needs a user's CSV; evaluation picks support frames from the ground truth")

    @property
    def scored_modes(self) -> list[str]:
        """The modes to score, baselines included."""
        return list(dict.fromkeys([*self.modes, *BASELINES]))

    def support(self, model, clip) -> list[int]:
        """The support frames the strategy picks among the clip's candidates (faceless ones included)."""
        if self.strategy == "active":
            return active_support(model, clip, self.budget)
        return select_support(
            self.strategy, clip.support_candidates, k=self.k, budget=self.budget, seed=self.seed,
            embeddings=clip.encoded.embeddings,
        )

    def describe(self, faces: str) -> dict:
        """The report's `protocol` section."""
        return {
            "strategy": self.strategy,
            "k": self.k if self.strategy == "every-k" else None,
            "budget": self.budget if self.strategy in ("fraction", "random", "diverse", "active") else None,
            "active_rounds": ACTIVE_ROUNDS if self.strategy == "active" else None,
            "seed": self.seed,
            "anchor_modes": [m for m in self.modes if m not in BASELINES],
            "baselines": list(BASELINES),
            "anchor_options": dict(self.anchor_options),
            "faces": faces,
            "scored_frames": "labelled query frames only (support frames excluded), where a face was found",
            "pooled": "all query frames of all videos together",
            "video_mean": "mean of the per-video metrics",
            "video_mean_skipped": "videos left out of each video_mean figure because it is undefined there",
            "cross_actor_pairing": "next clip in clip-id order (cyclic) with a different actor; anchor frames at the same relative positions",
        }


@dataclass
class LabelledClip:
    """An encoded clip with its ground truth: what the protocol needs, without any image.

    `valence` / `arousal` are (N,) with NaN on frames that carry no label (a user's label CSV may leave
    frames out); such frames are neither support candidates nor scored.
    """

    clip_id: str
    actor: str
    encoded: EncodedVideo
    valence: np.ndarray
    arousal: np.ndarray
    annotated_faces: np.ndarray | None = None  # frames the annotation's landmarks frame (support candidates)

    @property
    def labelled(self) -> np.ndarray:
        return np.isfinite(self.valence) & np.isfinite(self.arousal)

    @property
    def support_candidates(self) -> np.ndarray:
        faces = self.encoded.face_found if self.annotated_faces is None else self.annotated_faces
        return faces & self.labelled

    def with_faces(self, chosen) -> list:
        """The chosen support frames where a face was found: the others anchor nothing."""
        return [frame for frame in chosen if self.encoded.face_found[frame]]

    def query_frames(self, support) -> np.ndarray:
        """The frames scored as queries: a face found, a label, not a support frame."""
        return np.setdiff1d(np.flatnonzero(self.encoded.face_found & self.labelled), support)


def clip_frames(clip, fps: float = DEFAULT_FOLDER_FPS, faces: str = "landmarks"):
    """`VideoFrame`s of an `AfewVaClip` (raw or prepared), one at a time: with the annotation's landmarks
    (`faces="landmarks"`), or without them, for the labeller's detector to find (`faces="detector"`)."""
    boxes = clip.face_boxes
    for position, image in enumerate(clip.iter_images()):
        given = faces == "landmarks" and not np.isnan(boxes[position]).any()
        yield VideoFrame(
            index=position,
            timestamp=float(clip.frame_indices[position]) / fps,
            image=np.asarray(image, dtype=np.uint8),
            name=clip.frame_names[position],
            box=tuple(float(v) for v in boxes[position]) if given else None,
            landmarks=clip.landmarks[position] if given else None,
        )


def encode_clips(
    labeler: FewShotVideoLabeler,
    clips: Iterable,
    fps: float = DEFAULT_FOLDER_FPS,
    progress: bool = False,
    faces: str = "landmarks",
):
    """Encode every AFEW-VA clip once; returns `LabelledClip`s (embeddings + ground truth).

    `faces="detector"` hides the annotation's landmarks from the labeller, which must then have a detector.
    """
    if faces not in ("landmarks", "detector"):
        raise ConfigError(f"faces must be 'landmarks' or 'detector', got {faces!r}")
    if faces == "detector" and labeler.detector is None:
        raise ConfigError("faces='detector' needs a labeller with a face detector")
    from tqdm.auto import tqdm

    encoded = []
    for clip in tqdm(list(clips), desc="encoding clips", unit="clip", disable=not progress):
        if len(clip) == 0:
            continue
        video = labeler.encode(clip_frames(clip, fps, faces=faces), description=f"clip {clip.clip_id}")
        encoded.append(
            LabelledClip(
                clip.clip_id,
                clip.actor,
                video,
                np.asarray(clip.valence, np.float64),
                np.asarray(clip.arousal, np.float64),
                annotated_faces=~np.isnan(clip.face_boxes).any(axis=1),
            )
        )
    return encoded


def cross_actor_partners(clips: Sequence[LabelledClip]) -> dict[str, str]:
    """clip id -> the next clip (cyclically, in the given order) whose actor differs; absent if none does."""
    partners = {}
    for position, clip in enumerate(clips):
        for step in range(1, len(clips)):
            other = clips[(position + step) % len(clips)]
            if other.actor != clip.actor:
                partners[clip.clip_id] = other.clip_id
                break
    return partners


def same_video_anchors(clip: LabelledClip, support: list[int]) -> Anchors:
    return Anchors(
        embeddings=clip.encoded.embeddings[support],
        timestamps=clip.encoded.timestamps[support],
        valence=clip.valence[support],
        arousal=clip.arousal[support],
    )


def cross_actor_anchors(clip: LabelledClip, partner: LabelledClip, support: list[int]) -> Anchors:
    """Anchors at the clip's support times, with the partner's frames at the same relative positions."""
    num, num_partner = clip.encoded.num_frames, partner.encoded.num_frames
    scale = (num_partner - 1) / (num - 1) if num > 1 else 0.0
    pairs = [(s, int(round(s * scale))) for s in support]
    # A partner frame can anchor only where it has a face and a label (a user's videos may be partly labelled).
    pairs = [(s, row) for s, row in pairs if partner.encoded.face_found[row] and partner.labelled[row]]
    support, rows = [s for s, _ in pairs], [row for _, row in pairs]
    return Anchors(
        embeddings=partner.encoded.embeddings[rows],
        timestamps=clip.encoded.timestamps[support].astype(np.float64),
        valence=partner.valence[rows],
        arousal=partner.arousal[rows],
    )


def active_rounds(count: int, rounds: int = ACTIVE_ROUNDS) -> list[int]:
    """How many frames each round adds when `count` frames are labelled: the first frame alone, then the
    rest in `rounds` rounds as even as possible (larger first)."""
    rest = max(count - 1, 0)
    rounds = min(rounds, rest)
    return [1] + [rest // rounds + (1 if i < rest % rounds else 0) for i in range(rounds)] if count else []


def active_support(model, clip: LabelledClip, budget: float, rounds: int = ACTIVE_ROUNDS) -> list[int]:
    """The support frames a user following `mtclar suggest --support` would label, with the ground truth standing
    in for the user: the first candidate frame, then a few frames per round picked by `active_frames` from the
    labels of the frames picked so far, until `budget` (a fraction of the candidate frames) is spent.

    Only frames where a face was found are picked (a frame is proposed after its face was seen).
    """
    candidates = clip.support_candidates & clip.encoded.face_found
    num_candidates = int(candidates.sum())
    if not num_candidates:
        return []
    chosen: dict[int, tuple[float, float]] = {}
    for size in active_rounds(budget_count(num_candidates, budget), rounds):
        for frame in active_frames(model, clip.encoded, chosen, size, candidates=candidates):
            chosen[frame] = (float(clip.valence[frame]), float(clip.arousal[frame]))
    return sorted(chosen)


def _finite_or_none(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _video_mean(per_video: dict, modes: Sequence[str]) -> tuple[dict, dict]:
    """(mean of each mode's per-video metrics, how many videos each mean left out because the figure is
    undefined there), both {mode: {metric: value}}."""
    means, skipped = {}, {}
    for mode in modes:
        rows = [entry["modes"][mode] for entry in per_video.values()]
        means[mode], skipped[mode] = {}, {}
        for key in rows[0] if rows else []:
            values = [r[key] for r in rows if r[key] is not None]
            means[mode][key] = float(np.mean(values)) if values else None
            skipped[mode][key] = len(rows) - len(values)
    return means, skipped


def predict_scored(model, query_embeddings, query_times, anchors, mode: str, anchor_source: str, anchor_kwargs: dict):
    """Predictions of a mode, and for `auto` on the video's own anchors, its estimated RMSE (else None): from
    another person's anchors, leaving one out says nothing about this video."""
    if mode != AUTO_MODE or len(query_times) == 0:
        return (*predict_from_anchors(model, query_embeddings, query_times, anchors, mode=mode, **anchor_kwargs), None)
    from .auto import predict_auto

    valence, arousal, choice = predict_auto(model, query_embeddings, query_times, anchors, **anchor_kwargs)
    rmse = choice.estimated_rmse
    if anchor_source != "same_video" or rmse is None:
        return valence, arousal, None
    return valence, arousal, {"valence_rmse": rmse[0], "arousal_rmse": rmse[1], "chosen": choice.describe()}


def evaluate_encoded_clips(
    model,
    clips: Sequence[LabelledClip],
    protocol: Protocol | None = None,
    anchor_source: str = "same_video",
    supports: dict[str, list[int]] | None = None,
) -> dict:
    """Per-video and pooled metrics of each mode (+ both baselines) for one anchor source. `supports` (clip id ->
    frames) reuses support frames already picked by `protocol.support`, for the other anchor source."""
    protocol = protocol or Protocol()
    modes = protocol.scored_modes
    supports = supports if supports is not None else {clip.clip_id: protocol.support(model, clip) for clip in clips}
    partners = cross_actor_partners(clips) if anchor_source == "cross_actor" else {}
    by_id = {clip.clip_id: clip for clip in clips}
    pooled = {mode: ([], [], [], []) for mode in modes}
    per_video = {}
    total_frames = total_faces = total_support = 0
    for clip in clips:
        video = clip.encoded
        chosen = supports[clip.clip_id]
        support = clip.with_faces(chosen)
        if not support:
            continue
        if anchor_source == "cross_actor":
            if clip.clip_id not in partners:
                continue
            anchors = cross_actor_anchors(clip, by_id[partners[clip.clip_id]], support)
            if not len(anchors):
                continue
        else:
            anchors = same_video_anchors(clip, support)
        queries = clip.query_frames(support)
        entry = {
            "actor": clip.actor,
            "num_frames": video.num_frames,
            "num_faces_found": int(video.face_found.sum()),
            "num_support": len(support),
            "support_without_face": len(chosen) - len(support),
            "support_fraction": len(support) / video.num_frames,
            "modes": {},
        }
        if anchor_source == "cross_actor":
            entry["anchor_clip"] = partners[clip.clip_id]
        for mode in modes:
            valence, arousal, estimated = predict_scored(
                model, video.embeddings[queries], video.timestamps[queries], anchors, mode, anchor_source,
                protocol.anchor_options,
            )
            if estimated is not None:
                entry.setdefault("estimated", {})[mode] = estimated
            truth_v, truth_a = clip.valence[queries], clip.arousal[queries]
            scores = affect_metrics(truth_v, valence, truth_a, arousal)
            entry["modes"][mode] = {key: _finite_or_none(value) for key, value in scores.items()}
            for bucket, values in zip(pooled[mode], (truth_v, valence, truth_a, arousal)):
                bucket.append(values)
        per_video[clip.clip_id] = entry
        total_frames += video.num_frames
        total_faces += int(video.face_found.sum())
        total_support += len(support)
    pooled_metrics = {}
    for mode, (truth_v, pred_v, truth_a, pred_a) in pooled.items():
        if not truth_v:
            continue
        scores = affect_metrics(
            np.concatenate(truth_v), np.concatenate(pred_v), np.concatenate(truth_a), np.concatenate(pred_a)
        )
        pooled_metrics[mode] = {key: _finite_or_none(value) for key, value in scores.items()}
    video_mean, video_mean_skipped = _video_mean(per_video, modes)
    result = {
        "num_videos": len(per_video),
        "num_frames": total_frames,
        "num_faces_found": total_faces,
        "num_support": total_support,
        "support_fraction": total_support / total_frames if total_frames else None,
        "pooled": pooled_metrics,
        "video_mean": video_mean,
        "video_mean_skipped": video_mean_skipped,
        "per_video": per_video,
    }
    if anchor_source == "cross_actor":
        result["pairing"] = partners
    return result


def skipped_summary(section: dict) -> str | None:
    """One line saying which per-video means left videos out (figure undefined there); None when none did."""
    skipped = section.get("video_mean_skipped") or {}
    metrics = list(dict.fromkeys(key for counts in skipped.values() for key in counts))
    parts = []
    for key in metrics:
        counts = {mode: values[key] for mode, values in skipped.items() if values.get(key)}
        if not counts:
            continue
        if len(counts) == len(skipped) and len(set(counts.values())) == 1:
            parts.append(f"{key} {next(iter(counts.values()))}")
        else:
            parts.append(f"{key} ({', '.join(f'{mode} {n}' for mode, n in counts.items())})")
    if not parts:
        return None
    return f"video means leave out videos where a figure is undefined (of {section['num_videos']}): " + "; ".join(parts)


def best_modes(section: dict) -> dict:
    """For each pooled metric, the mode that does best (highest CCC/PCC/SAGR, lowest RMSE)."""
    pooled = section.get("pooled", {})
    best = {}
    for key in next(iter(pooled.values()), {}):
        scored = {mode: values[key] for mode, values in pooled.items() if values[key] is not None}
        if scored:
            pick = min if key.endswith("rmse") else max
            best[key] = pick(scored, key=scored.get)
    return best


def evaluate_afew_va(
    labeler: FewShotVideoLabeler,
    clips: Iterable,
    protocol: Protocol | None = None,
    fps: float = DEFAULT_FOLDER_FPS,
    progress: bool = False,
    faces: str = "landmarks",
) -> dict:
    """The whole protocol on AFEW-VA clips (`load_afew_va_clips` or `iter_prepared_clips`): a JSON-ready dict."""
    protocol = protocol or Protocol()
    encoded = encode_clips(labeler, clips, fps=fps, progress=progress, faces=faces)
    if not encoded:
        raise ConfigError("no AFEW-VA clip with frames to evaluate")
    return evaluate_labelled_clips(labeler.model, encoded, protocol, faces=faces)


def evaluate_labelled_clips(
    model, encoded: Sequence[LabelledClip], protocol: Protocol | None = None, faces: str = "landmarks"
) -> dict:
    """The report of the protocol on clips already encoded (AFEW-VA clips, or a user's videos with their labels):
    the protocol's settings, `same_video` and `cross_actor` sections, and the best mode of each metric."""
    protocol = protocol or Protocol()
    supports = {clip.clip_id: protocol.support(model, clip) for clip in encoded}  # one pick serves both sources
    report = {
        "protocol": protocol.describe(faces),
        "same_video": evaluate_encoded_clips(model, encoded, protocol, "same_video", supports),
    }
    if protocol.cross_actor:
        if len({clip.actor for clip in encoded}) > 1:
            report["cross_actor"] = evaluate_encoded_clips(model, encoded, protocol, "cross_actor", supports)
        else:
            report["cross_actor"] = None
            report["protocol"]["cross_actor_note"] = "skipped: every clip has the same actor"
    report["best_mode"] = {name: best_modes(report[name]) for name in ("same_video", "cross_actor") if report.get(name)}
    return report
