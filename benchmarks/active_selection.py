"""How active selection's look weight was chosen: `active` against `every-k` on SynthAffect's VALIDATION clips.

    python -m benchmarks.active_selection [--model outputs/quickstart/model] [--config configs/synth_quick.yaml]
                                          [--weights 1 0.5 0.25 0] [--out results.json]

`--strategy active` is simulated as `mtclar evaluate` does it (the first frame, then rounds of suggestions
labelled from the ground truth) for each weight of the look distance against the time distance
(`support.ACTIVE_LOOK_WEIGHT`), at the 2% and 4% budgets, beside `every-k` at the same budgets (k = 50, 25);
everything scored with the model's `auto` (pooled CCC over query frames). The held-out clips are not used.
docs/LABELLING.md quotes the figures.
"""

from __future__ import annotations

import argparse

from . import machine, print_table, write_json
from .auto_mode import validation_clips

BUDGETS = ((0.02, 50), (0.04, 25))


def pooled_auto(model, clips, protocol) -> str:
    from mtclar_hf.labeling.evaluation import evaluate_encoded_clips

    pooled = evaluate_encoded_clips(model, clips, protocol)["pooled"]["auto"]
    return f"{pooled['valence_ccc']:.3f} / {pooled['arousal_ccc']:.3f}"


def main(argv=None) -> int:
    from mtclar_hf.labeling import support
    from mtclar_hf.labeling.evaluation import Protocol
    from mtclar_hf.quickstart import QUICK_RECIPE

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="outputs/quickstart/model", help="a model trained with --config")
    parser.add_argument("--config", default=str(QUICK_RECIPE), help="the recipe whose validation clips to use")
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.0], help="look weights")
    parser.add_argument("--out", default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)

    model, clips, clips_dir = validation_clips(args.model, args.config)
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
    if args.out:
        result = {"machine": machine(), "model": args.model, "validation_clips": str(clips_dir),
                  "budgets": [budget for budget, _ in BUDGETS], "rows": [list(row) for row in rows]}
        print(f"wrote {write_json(result, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
