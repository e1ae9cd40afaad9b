"""What the SmolLM2 pruning experiments in benchmarks/ share: the adapted model on 2 threads, the first 300 valid
sentences perplexity is measured on, and the calibration (token windows for reconstruction, statistics for the
criterion) drawn with one seed."""
from __future__ import annotations

import torch

from prunelab.data.text import Corpus, load_corpus
from prunelab.lm.adapter import ModelAdapter
from prunelab.lm.load import load_model
from prunelab.prune.calibration import Calibration, calibrate
from prunelab.prune.run import calibration_batches

MODEL = "smollm2-135m-domain"
PPL_SENTENCES = 300
SEED = 1000


def model_and_valid() -> tuple[Corpus, list[str], ModelAdapter]:
    """(the shipped corpus, its first PPL_SENTENCES valid sentences, the model in eval mode)."""
    torch.set_num_threads(2)
    corpus = load_corpus()
    return corpus, corpus.valid[:PPL_SENTENCES], load_model(MODEL).eval()


def calibration(base: ModelAdapter, corpus: Corpus, n_sequences: int) -> tuple[list[torch.Tensor], Calibration]:
    """(reconstruction's token windows, the criterion's forward-only statistics) of `n_sequences` sequences."""
    stream = base.tokenizer.stream(corpus.train)
    batches = calibration_batches(stream, n_sequences, base.context, SEED)
    return batches, calibrate(base, corpus, n_sequences, seed=SEED, stream=stream, gradients=False)
