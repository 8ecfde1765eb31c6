"""Train a BERT-tiny-shaped text classifier on a synthetic task and export it (ONNX x2, .pt2).

The model is Hugging Face's `BertForSequenceClassification` with exactly BERT-tiny's configuration
(2 layers, hidden 128, 2 heads, FFN 512, vocabulary 30,522, 512 positions: 4.39 M parameters),
trained from random initialisation. The task is synthetic, so nothing is downloaded: a "sentence" is
8..SEQ-2 random word ids between [CLS] and [SEP], padded with [PAD] (id 0, attention_mask 0); 2..5
of its words come from a "positive" or a "negative" keyword list and the label is 1 when positive
keywords outnumber negative ones (ties are not generated). Solving it needs attention over the
unpadded tokens only. Fixed seeds: re-running writes the same weights.

Writes into --out (default: this folder):
  model.onnx          torch.onnx.export(dynamo=False), opset 17, inputs input_ids/attention_mask
                      [1, SEQ] int64, output logits [1, 2]
  model_dynamo.onnx   the same model through torch.onnx.export(dynamo=True) (needs onnxscript)
  model.pt2           torch.export of the same model
  tokens.npz          held-out test set: input_ids, attention_mask [N, SEQ] int64, labels [N] int64
The float ONNX files are ~17 MB (the 30,522 x 128 embedding table is 3.9 M of the 4.39 M parameters),
too big to commit: they are generated (into build/ by the tests). tokens.npz is small and committed.
"""

import argparse
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VOCAB, HIDDEN, LAYERS, HEADS, FFN, POSITIONS = 30522, 128, 2, 2, 512, 512
PAD, CLS, SEP = 0, 101, 102  # BERT's special token ids
WORDS = np.arange(1000, 3000)  # the synthetic language's words (BERT's id range for ordinary tokens)
POSITIVE, NEGATIVE = WORDS[:16], WORDS[16:32]
PLAIN = WORDS[32:]


def make_data(n, seq, seed):
    """n sentences of length <= seq: input_ids, attention_mask [n, seq] int64, labels [n] int64."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((n, seq), np.int64)
    mask = np.zeros((n, seq), np.int64)
    labels = np.zeros(n, np.int64)
    for i in range(n):
        length = int(rng.integers(8, seq - 1))  # words, plus [CLS] and [SEP]
        words = rng.choice(PLAIN, length)
        k = int(rng.integers(2, 6))
        npos = int(rng.integers(0, k + 1))
        if 2 * npos == k:
            npos += 1  # no ties
        kw = np.concatenate([rng.choice(POSITIVE, npos), rng.choice(NEGATIVE, k - npos)])
        words[rng.choice(length, k, replace=False)] = kw
        ids[i, :length + 2] = np.concatenate([[CLS], words, [SEP]])
        mask[i, :length + 2] = 1
        labels[i] = int(2 * npos > k)
    return ids, mask, labels


def build_model():
    import torch
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                        intermediate_size=FFN, max_position_embeddings=POSITIONS, num_labels=2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config._attn_implementation = "eager"  # plain MatMul/Softmax attention (sdpa adds IsNaN/Where guards)
    return BertForSequenceClassification(config)


class Logits:
    """A torch module wrapper returning only the logits tensor (exporters want tensors, not ModelOutput)."""

    def __new__(cls, bert):
        import torch

        class _M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, attention_mask):
                return self.bert(input_ids=input_ids, attention_mask=attention_mask).logits
        return _M().eval()


def train(model, seq, steps, log=print):
    import torch
    torch.manual_seed(1)
    ids, mask, labels = make_data(steps * 32, seq, seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    for s in range(steps):
        b = slice(32 * s, 32 * (s + 1))
        out = model(input_ids=torch.from_numpy(ids[b]), attention_mask=torch.from_numpy(mask[b]),
                    labels=torch.from_numpy(labels[b]))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if s % 100 == 0 or s == steps - 1:
            log(f"step {s:4d} loss {out.loss.item():.4f}")
    model.eval()


def accuracy(model, ids, mask, labels):
    import torch
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits
    return float((logits.argmax(-1).numpy() == labels).mean())


def export(model, out, seq):
    import torch
    wrapped = Logits(model)
    example = (torch.zeros((1, seq), dtype=torch.int64), torch.ones((1, seq), dtype=torch.int64))
    names = dict(input_names=["input_ids", "attention_mask"], output_names=["logits"])
    torch.onnx.export(wrapped, example, str(out / "model.onnx"), dynamo=False, opset_version=17, **names)
    torch.onnx.export(wrapped, example, str(out / "model_dynamo.onnx"), dynamo=True, opset_version=18,
                      external_data=False, **names)
    torch.export.save(torch.export.export(wrapped, example), str(out / "model.pt2"))


def main(argv=None):
    import torch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--seq", type=int, default=32, help="sequence length of the exported models")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--test", type=int, default=200, help="test sentences written to tokens.npz")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    model = build_model()
    t0 = time.time()
    train(model, args.seq, args.steps)
    ids, mask, labels = make_data(args.test, args.seq, seed=2)
    print(f"trained in {time.time() - t0:.0f} s; test accuracy {accuracy(model, ids, mask, labels):.3f}")
    np.savez(args.out / "tokens.npz", input_ids=ids, attention_mask=mask, labels=labels)
    export(model, args.out, args.seq)
    print(f"wrote model.onnx, model_dynamo.onnx, model.pt2, tokens.npz into {args.out}")


if __name__ == "__main__":
    main()
