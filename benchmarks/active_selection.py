"""How active selection's look weight was chosen: `active` against `every-k` on SynthAffect's VALIDATION clips.

    python -m benchmarks.active_selection [--model outputs/quickstart/model] [--config configs/synth_quick.yaml]
                                          [--weights 1 0.5 0.25 0] [--val-clips 64] [--subset 16]
                                          [--out results.json]

`--strategy active` is simulated as `mtclar evaluate` does it (the first frame, then rounds of suggestions
labelled from the ground truth) for each weight of the look distance against the time distance
(`support.ACTIVE_LOOK_WEIGHT`), at the 2% and 4% budgets, beside `every-k` at the same budgets (k = 50, 25);
everything scored with the model's `auto` (pooled CCC over query frames). Then, with the shipped weight, `active`
minus `every-k` on each set of `--subset` consecutive clips: how much a difference measured on as many clips as
the held-out set has varies. The held-out clips are not used. docs/LABELLING.md quotes the figures.
"""

from __future__ import annotations

import argparse

from . import machine, print_table, write_json
from .auto_mode import VALIDATION_CLIPS, validation_clips

BUDGETS = ((0.02, 50), (0.04, 25))


def pooled_ccc(model, clips, protocol) -> tuple[float, float]:
    from mtclar_hf.labeling.evaluation import evaluate_encoded_clips

    pooled = evaluate_encoded_clips(model, clips, protocol)["pooled"]["auto"]
    return pooled["valence_ccc"], pooled["arousal_ccc"]


def pooled_auto(model, clips, protocol) -> str:
    return "{:.3f} / {:.3f}".format(*pooled_ccc(model, clips, protocol))


def subset_differences(model, clips, size: int) -> list[tuple]:
    """(budget and clips, active - every-k valence / arousal, "") for each run of `size` consecutive clips."""
    from mtclar_hf.labeling.evaluation import Protocol

    rows = []
    for budget, k in BUDGETS:
        for start in range(0, len(clips) - size + 1, size):
            subset = clips[start : start + size]
            active = pooled_ccc(model, subset, Protocol(strategy="active", budget=budget, cross_actor=False))
            every_k = pooled_ccc(model, subset, Protocol(strategy="every-k", k=k, cross_actor=False))
            rows.append((f"{budget:.0%}, clips {start + 1}-{start + size}", f"{active[0] - every_k[0]:+.3f} / {active[1] - every_k[1]:+.3f}", ""))
    return rows


def main(argv=None) -> int:
    from mtclar_hf.labeling import support
    from mtclar_hf.labeling.evaluation import Protocol
    from mtclar_hf.quickstart import QUICK_RECIPE

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="outputs/quickstart/model", help="a model trained with --config")
    parser.add_argument("--config", default=str(QUICK_RECIPE), help="the recipe whose validation clips to use")
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.0], help="look weights")
    parser.add_argument("--val-clips", type=int, default=VALIDATION_CLIPS, help="how many validation clips to render and use")
    parser.add_argument("--subset", type=int, default=16, help="clips per subset for the spread (the held-out set's size)")
    parser.add_argument("--out", default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.subset <= args.val_clips:
        parser.error(f"--subset must be between 1 and --val-clips ({args.val_clips}), got {args.subset}")

    model, clips, clips_dir = validation_clips(args.model, args.config, args.val_clips)
    rows = [("every-k", *(pooled_auto(model, clips, Protocol(strategy="every-k", k=k, cross_actor=False)) for _, k in BUDGETS))]
    shipped = support.ACTIVE_LOOK_WEIGHT
    try:
        for weight in args.weights:
            support.ACTIVE_LOOK_WEIGHT = weight
            protocols = (Protocol(strategy="active", budget=budget, cross_actor=False) for budget, _ in BUDGETS)
            rows.append((f"active, look weight {weight:g}", *(pooled_auto(model, clips, p) for p in protocols)))
    finally:
        support.ACTIVE_LOOK_WEIGHT = shipped
    print_table(f"validation clips ({len(clips)}): pooled CCC valence / arousal of auto, budgets 2% | 4%", rows)
    spread = subset_differences(model, clips, args.subset)
    print_table(f"active (look weight {shipped:g}) minus every-k, per {args.subset} clips: pooled CCC valence / arousal", spread)
    if args.out:
        result = {"machine": machine(), "model": args.model, "validation_clips": str(clips_dir),
                  "budgets": [budget for budget, _ in BUDGETS], "rows": [list(row) for row in rows],
                  "subset_differences": [list(row) for row in spread]}
        print(f"wrote {write_json(result, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
