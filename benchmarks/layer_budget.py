"""Per-layer FFN budgets by measured sensitivity, the experiment behind `prune.methods.SPREAD`: SmolLM2-domain, FFN
neurons alone removed to 0.7 of the model (embedding and attention kept), units chosen by the activation score,
least-squares reconstruction, valid perplexity on the first 300 sentences. Every layer the same keep fraction
(spread 0) against fractions moved by each layer's sensitivity (the calibration loss's increase with its removed
neurons zeroed alone): keep_l = f + spread (s_l / mean s - 1), within 0.15, shifted to the same total.

    python benchmarks/layer_budget.py [--spreads 0,0.1,0.25] [--calibration-sequences 128]

Measured 2026-12-07 on 2 cores (AMD EPYC, AVX512-BF16): 122.2 (0), 115.2 (0.1), 114.6 (0.25); base 56.1.
About 5 minutes a spread, 3 for the sensitivities. Prints only."""
from __future__ import annotations

import argparse
import time

import torch
from smollm2_experiment import calibration, model_and_valid

from prunelab.lm.score import perplexity
from prunelab.prune.criteria import get_criterion
from prunelab.prune.methods import calibration_loss
from prunelab.prune.reconstruct import reconstruct

SIZE = 0.7
LIMIT = 0.15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spreads", default="0,0.1,0.25")
    parser.add_argument("--calibration-sequences", type=int, default=128)
    args = parser.parse_args()
    corpus, valid, base = model_and_valid()
    total = base.param_counts()["params_total"]
    groups = [base.unit_groups(layer)[1] for layer in range(base.n_layers)]
    cost, width = groups[0].unit_cost(), groups[0].n_units
    fraction = 1 - (1 - SIZE) * total / cost / (width * base.n_layers)
    started = time.time()
    batches, calib = calibration(base, corpus, args.calibration_sequences)
    criterion = get_criterion("activation")
    order = []
    for group in groups:
        scores = {slot.param_name: criterion(slot.param_name, slot.view(), calib) for slot, _, _ in group.members}
        order.append(criterion.unit_score(group.unit_elements(scores), dim=1).argsort(descending=True))

    def loss() -> float:
        return calibration_loss(base, calib.batches[:2])

    before = loss()
    sensitivity = []
    uniform = round(fraction * width)
    for layer, group in enumerate(groups):
        view, gone = group.members[-1][0].view(), order[layer][uniform:]
        saved = view[:, gone].clone()
        with torch.no_grad():
            view[:, gone] = 0
        sensitivity.append(loss() - before)
        with torch.no_grad():
            view[:, gone] = saved
    measured = torch.tensor(sensitivity)
    print(f"sensitivities ({time.time() - started:.0f} s):", [round(x, 3) for x in sensitivity], flush=True)
    for spread in (float(x) for x in args.spreads.split(",")):
        started = time.time()
        wanted = (fraction + spread * (measured / measured.mean() - 1)).clamp(fraction - LIMIT, fraction + LIMIT)
        wanted = wanted + (fraction - wanted.mean())
        keep = [min(width, max(1, round(float(q) * width))) for q in wanted]
        lm = base.clone()
        for layer in range(lm.n_layers):
            lm.keep_units(lm.unit_groups(layer)[1], order[layer][:keep[layer]].sort().values.cpu())
        reconstruct(lm, base, batches)
        print(f"spread {spread:g}: kept {keep}, size {(total - sum(width - k for k in keep) * cost) / total:.4f}, "
              f"valid ppl {perplexity(lm, valid):.1f} ({time.time() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
