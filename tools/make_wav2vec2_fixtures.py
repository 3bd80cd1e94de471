#!/usr/bin/env python3
"""Build tiny random-weight Wav2Vec2ForCTC checkpoints and their reference outputs.

Writes, under tests/fixtures/wav2vec2/:
  base-tiny/    feat_extract_norm "group" (the wav2vec2-base family), weight norm saved as
                weight_g / weight_v
  stable-tiny/  feat_extract_norm "layer" + do_stable_layer_norm (the large / XLSR family),
                weight norm saved as parametrizations.weight.original0 / original1
and base-tiny-bin/ (base-tiny as pytorch_model.bin, no safetensors),
each with config.json, model.safetensors, vocab.json, tokenizer_config.json,
preprocessor_config.json, and
  reference.safetensors  the first normalised input values, last hidden state, every
                         layer's hidden states, logits, and the outputs for a padded batch of
                         the clip and its first 3/5 (with an attention mask)
  reference.json         the decoded text and word offsets, as transformers gives them

Run with a Python that has torch, transformers, safetensors and soundfile:

    python tools/make_wav2vec2_fixtures.py

The input is speech16k.wav beside the models (espeak-ng "the quick brown fox jumps over
the lazy dog", 16 kHz). Seeds are searched until, on every frame, the best logit beats the
second by a clear margin, so that the text check tests decoding, not float rounding.
"""
import json
import os
import tempfile

import numpy as np
import soundfile as sf
import torch
from safetensors.torch import save_file
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2Processor,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "wav2vec2")
# The vocabulary of facebook/wav2vec2-base-960h.
VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D",
         "L", "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]
MIN_MARGIN = 0.01


def config(stable):
    return Wav2Vec2Config(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        conv_dim=(16,) * 7,
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_bias=stable,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer" if stable else "group",
        do_stable_layer_norm=stable,
        feat_extract_activation="gelu",
        hidden_act="gelu",
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        ctc_loss_reduction="mean",
        apply_spec_augment=False,
    )


def margins_ok(logits):
    top2 = torch.topk(logits, 2, dim=-1).values
    margin = (top2[..., 0] - top2[..., 1]).min().item()
    specials = logits.argmax(-1)
    # <s>, </s> and <unk> never win, so transformers' plain decode and ours agree on text.
    return margin > MIN_MARGIN and not bool(((specials >= 1) & (specials <= 3)).any()), margin


def build(name, stable, audio):
    out = os.path.join(OUT, name)
    os.makedirs(out, exist_ok=True)
    cfg = config(stable)
    for seed in range(1000):
        torch.manual_seed(seed)
        model = Wav2Vec2ForCTC(cfg).eval()
        with torch.no_grad():
            # Random init leaves the head's logits nearly equal; spread them so a
            # greedy decode is well defined.
            model.lm_head.weight.mul_(8.0)
            model.lm_head.bias.normal_(0.0, 0.5)
            model.lm_head.bias[1:4] = -20.0
        inputs = feature_extractor(stable)(audio, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            logits = model(inputs.input_values).logits
        ok, margin = margins_ok(logits)
        if ok:
            break
    else:
        raise SystemExit(f"{name}: no seed gave a clear margin")
    print(f"{name}: seed {seed}, smallest top-two logit margin {margin:.4f}")

    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = os.path.join(tmp, "vocab.json")
        with open(vocab_path, "w") as f:
            json.dump({t: i for i, t in enumerate(VOCAB)}, f)
        tokenizer = Wav2Vec2CTCTokenizer(vocab_path, unk_token="<unk>", pad_token="<pad>",
                                         word_delimiter_token="|")
        processor = Wav2Vec2Processor(feature_extractor=feature_extractor(stable), tokenizer=tokenizer)
        processor.save_pretrained(out)
        feature_extractor(stable).save_pretrained(out)
    model.save_pretrained(out, safe_serialization=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if not stable:
        # The older weight-norm layout, as wav2vec2-base-960h publishes it.
        for old, new in (("weight_g", "original0"), ("weight_v", "original1")):
            key = f"wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.{new}"
            state[f"wav2vec2.encoder.pos_conv_embed.conv.{old}"] = state.pop(key)
    save_file(state, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})

    fe = feature_extractor(stable)
    single = fe(audio, sampling_rate=16000, return_tensors="pt")
    short = audio[: len(audio) * 3 // 5]
    batch = fe([audio, short], sampling_rate=16000, padding=True, return_attention_mask=True,
               return_tensors="pt")
    with torch.no_grad():
        out1 = model(single.input_values, output_hidden_states=True)
        outb = model(batch.input_values, attention_mask=batch.attention_mask)
        # hidden_states[-1] is the last layer's output, before the stable models' final
        # layer norm; last_hidden_state is after it.
        last1 = model.wav2vec2(single.input_values).last_hidden_state
        lastb = model.wav2vec2(batch.input_values, attention_mask=batch.attention_mask).last_hidden_state
        short_alone = model(fe(short, sampling_rate=16000, return_tensors="pt").input_values)
    ids = out1.logits.argmax(-1)
    decoded = processor.batch_decode(ids, output_word_offsets=True)
    ratio = model.config.inputs_to_logits_ratio / 16000
    words = [{"word": w["word"], "start": w["start_offset"] * ratio, "end": w["end_offset"] * ratio}
             for w in decoded.word_offsets[0]]
    tensors = {
        # The normalised input's first samples check feature extraction on its own; the
        # whole input is not kept, to keep the fixture small.
        "input_values_head": single.input_values[:, :2048],
        "last_hidden_state": last1,
        "logits": out1.logits,
        "batch_last_hidden_state": lastb,
        "batch_logits": outb.logits,
        "short_logits": short_alone.logits,
    }
    for i, h in enumerate(out1.hidden_states):
        tensors[f"hidden_state_{i}"] = h
    save_file({k: v.clone().contiguous() for k, v in tensors.items()}, os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({
            "seed": seed,
            "text": decoded.text[0],
            "batch_text": processor.batch_decode(outb.logits.argmax(-1)),
            "words": words,
            "frames": int(out1.logits.shape[1]),
            "short_samples": len(short),
        }, f, indent=2)
        f.write("\n")
    print(f"{name}: text {decoded.text[0]!r}")


def feature_extractor(stable):
    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                    do_normalize=True, return_attention_mask=stable)


def pytorch_copy(name):
    """The same checkpoint as a PyTorch pickle (pytorch_model.bin) and no safetensors, as
    older Hub repositories publish it."""
    import shutil
    from safetensors.torch import load_file
    src, dst = os.path.join(OUT, name), os.path.join(OUT, f"{name}-bin")
    os.makedirs(dst, exist_ok=True)
    for f in ("config.json", "vocab.json", "tokenizer_config.json", "preprocessor_config.json"):
        shutil.copy(os.path.join(src, f), dst)
    torch.save(load_file(os.path.join(src, "model.safetensors")), os.path.join(dst, "pytorch_model.bin"))


def main():
    audio, sr = sf.read(os.path.join(OUT, "speech16k.wav"), dtype="float32")
    assert sr == 16000
    build("base-tiny", False, audio)
    build("stable-tiny", True, audio)
    pytorch_copy("base-tiny")


if __name__ == "__main__":
    main()
