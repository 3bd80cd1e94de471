#!/usr/bin/env python3
"""Build the tiny AudioLDM fixture pipeline and its reference outputs.

Writes, under tests/fixtures/audioldm/:
  tiny/          a random-weight AudioLDM pipeline in the diffusers layout (model_index.json,
                 text_encoder/, tokenizer/, unet/, vae/, vocoder/, scheduler/), safetensors
  tiny/scheduler_dpm/   a DPM-Solver++ scheduler config for the same pipeline
  references.safetensors  reference outputs of every component and of whole runs
  references.json         the prompts, settings and token ids the references were made with
  *.npy                   initial latents fed to the whole-pipeline runs (`initLatents`)

The components use the tiny configurations of diffusers' own AudioLDM tests
(tests/pipelines/audioldm/test_audioldm.py, get_dummy_components), except that the
tokenizer is a byte-level BPE trained here on a few sentences: the Hub is not needed.

Regenerate (needs torch, transformers, diffusers, safetensors, numpy):
    python3 tools/make_audioldm_fixtures.py
Everything is seeded; the Rust tests in tests/audioldm.rs read what this writes.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    ClapTextConfig,
    ClapTextModelWithProjection,
    RobertaTokenizer,
    SpeechT5HifiGan,
    SpeechT5HifiGanConfig,
)
from diffusers import (
    AudioLDMPipeline,
    AutoencoderKL,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    UNet2DConditionModel,
)

ROOT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audioldm"
TINY = ROOT / "tiny"

PROMPT = "A hammer hitting a wooden surface"
NEGATIVE = "low quality, noise"

CORPUS = [
    "a hammer hitting a wooden surface",
    "rain falling on a tin roof with distant thunder",
    "a dog barking in the distance, birds singing",
    "low quality noise, hiss and hum",
    "warm analog synthesizer pad with slow attack",
    "clear speech of a woman in a quiet room",
]


def build_tokenizer(workdir: Path) -> RobertaTokenizer:
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS,
        vocab_size=400,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    bpe.save_model(str(workdir))
    return RobertaTokenizer.from_pretrained(str(workdir), model_max_length=77)


def build_pipeline(tokenizer) -> AudioLDMPipeline:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=(8, 16),
        class_embed_type="simple_projection",
        projection_class_embeddings_input_dim=8,
        class_embeddings_concat=True,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=1,
        out_channels=1,
        norm_num_groups=8,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
    )
    torch.manual_seed(0)
    text_encoder = ClapTextModelWithProjection(
        ClapTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            hidden_size=8,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=1,
            num_hidden_layers=1,
            pad_token_id=1,
            vocab_size=1000,
            projection_dim=8,
        )
    )
    torch.manual_seed(0)
    vocoder = SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=8,
            sampling_rate=16000,
            upsample_initial_channel=16,
            upsample_rates=[2, 2],
            upsample_kernel_sizes=[4, 4],
            resblock_kernel_sizes=[3, 7],
            resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
            normalize_before=False,
        )
    )
    # Random init leaves the group/layer norms at identity; perturb every parameter a little
    # so that a wrong affine, bias or buffer shows in the references.
    g = torch.Generator().manual_seed(1)
    for module in (unet, vae, text_encoder, vocoder):
        with torch.no_grad():
            for p in module.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g))
    # The vocoder's default init (std 0.01) would squash every input to nearly the same
    # waveform; fan-in scaled weights keep its output sensitive to the spectrogram, so the
    # whole-run references can tell a wrong latent from a right one.
    with torch.no_grad():
        for name, p in vocoder.named_parameters():
            if name.endswith("weight"):
                fan_in = p.shape[1] * p.shape[2] if "upsampler" not in name else p.shape[0] * p.shape[2] / 2
                p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
    for module in (unet, vae, text_encoder, vocoder):
        module.eval()  # no dropout in the references
    pipe = AudioLDMPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        vocoder=vocoder,
    )
    return pipe.to("cpu")


# ---- the log-mel recipe of audio-to-audio, as src/ops/generation.rs computes it ----


def hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def slaney_mel_bank(sr, n_fft, n_mels, fmin, fmax):
    fft_f = np.arange(n_fft // 2 + 1) * sr / n_fft
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    bank = np.zeros((n_mels, len(fft_f)))
    for i in range(n_mels):
        lower = (fft_f - mel_f[i]) / (mel_f[i + 1] - mel_f[i])
        upper = (mel_f[i + 2] - fft_f) / (mel_f[i + 2] - mel_f[i + 1])
        bank[i] = np.maximum(0, np.minimum(lower, upper)) * 2.0 / (mel_f[i + 2] - mel_f[i])
    return bank.astype(np.float32)


def log_mel(y, sr, hop, n_mels, frames):
    """Centred (zero-padded) periodic-Hann magnitude STFT, Slaney mel, natural log of the
    magnitudes clamped at 1e-5; cropped or zero-extended (at log 1e-5) to `frames`."""
    n_fft = 1
    while n_fft < 4 * hop:
        n_fft *= 2
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    padded = np.concatenate([np.zeros(n_fft // 2), y.astype(np.float64), np.zeros(n_fft // 2)])
    count = 1 + len(y) // hop
    spec = np.stack(
        [np.abs(np.fft.rfft(padded[t * hop : t * hop + n_fft] * window)) for t in range(count)]
    )
    mel = spec @ slaney_mel_bank(sr, n_fft, n_mels, 0.0, sr / 2).T.astype(np.float64)
    out = np.log(np.maximum(mel, 1e-5))
    if out.shape[0] >= frames:
        out = out[:frames]
    else:
        out = np.concatenate([out, np.full((frames - out.shape[0], n_mels), np.log(1e-5))])
    return out.astype(np.float32)


@torch.no_grad()
def run_pipeline(pipe, scheduler, steps, guidance, latents, negative=None, num_waveforms=1):
    """The waveforms and the final latents of a run."""
    pipe.scheduler = scheduler
    final = {}
    out = pipe(
        PROMPT,
        callback=lambda i, t, lat: final.__setitem__("latents", lat.clone()),
        negative_prompt=negative if guidance > 1.0 else None,
        num_inference_steps=steps,
        guidance_scale=guidance,
        num_waveforms_per_prompt=num_waveforms,
        latents=latents.clone(),
        audio_length_in_s=0.016,
        output_type="pt",
    )
    return out.audios.float(), final["latents"]


@torch.no_grad()
def run_audio_to_audio(pipe, scheduler, mel, steps, strength, guidance, noise):
    """Audio-to-audio as our pipeline defines it: the source's log-mel is encoded to the mean of
    the VAE's latent distribution, noised to the step that `strength` selects, and denoised
    from there like text-to-audio."""
    pipe.scheduler = scheduler
    do_cfg = guidance > 1.0
    embeds = pipe._encode_prompt(PROMPT, "cpu", 1, do_cfg, NEGATIVE if do_cfg else None)
    scheduler.set_timesteps(steps)
    init = int(steps * strength)
    start = max(steps - init, 0)
    timesteps = scheduler.timesteps[start * scheduler.order :]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start * scheduler.order)
    x0 = pipe.vae.encode(mel[None, None]).latent_dist.mean * pipe.vae.config.scaling_factor
    latents = scheduler.add_noise(x0, noise.clone(), timesteps[:1])
    for t in timesteps:
        inp = torch.cat([latents] * 2) if do_cfg else latents
        inp = scheduler.scale_model_input(inp, t)
        pred = pipe.unet(inp, t, encoder_hidden_states=None, class_labels=embeds).sample
        if do_cfg:
            u, c = pred.chunk(2)
            pred = u + guidance * (c - u)
        latents = scheduler.step(pred, t, latents).prev_sample
    mel_out = pipe.decode_latents(latents)
    wave = pipe.mel_spectrogram_to_waveform(mel_out)
    return wave[:, : mel.shape[0] * int(np.prod(pipe.vocoder.config.upsample_rates))].float(), latents


def main():
    if TINY.exists():
        shutil.rmtree(TINY)
    ROOT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp))
        pipe = build_pipeline(tokenizer)
        pipe.save_pretrained(str(TINY), safe_serialization=True)
        # The slow tokenizer's files too, so loading without tokenizer.json is covered.
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(Path(tmp) / name, TINY / "tokenizer" / name)
    dpm = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    dpm.save_config(str(TINY / "scheduler_dpm"))

    refs = {}
    meta = {"prompt": PROMPT, "negativePrompt": NEGATIVE, "runs": {}}
    with torch.no_grad():
        # Text encoder: ids as the pipeline tokenizes them (padding is masked, so unpadded
        # ids give the same embeddings).
        for key, text in (("prompt", PROMPT), ("negative", NEGATIVE), ("empty", "")):
            ids = tokenizer(text)["input_ids"]
            meta[f"ids_{key}"] = ids
            padded = tokenizer(text, padding="max_length", max_length=77, return_tensors="pt")
            out = pipe.text_encoder(padded.input_ids, attention_mask=padded.attention_mask)
            refs[f"text_embeds_{key}"] = out.text_embeds[0].contiguous()

        g = torch.Generator().manual_seed(7)
        # UNet: one even-sized forward and one whose size needs explicit upsample sizes.
        for key, shape, t in (("even", (2, 4, 32, 4), 981), ("odd", (2, 4, 9, 5), 17)):
            sample = torch.randn(shape, generator=g)
            labels = torch.nn.functional.normalize(torch.randn((2, 8), generator=g), dim=-1)
            refs[f"unet_{key}_sample"] = sample
            refs[f"unet_{key}_labels"] = labels
            refs[f"unet_{key}_out"] = pipe.unet(
                sample, torch.tensor(t), encoder_hidden_states=None, class_labels=labels
            ).sample
            meta[f"unet_{key}_timestep"] = t

        latents = torch.randn((1, 4, 8, 4), generator=g)
        refs["vae_decode_in"] = latents
        refs["vae_decode_out"] = pipe.vae.decode(latents).sample
        mel = torch.randn((1, 1, 16, 8), generator=g)
        dist = pipe.vae.encode(mel).latent_dist
        refs["vae_encode_in"] = mel
        refs["vae_encode_mean"] = dist.mean
        refs["vae_encode_logvar"] = dist.logvar

        spec = torch.randn((1, 20, 8), generator=g)
        refs["vocoder_in"] = spec
        refs["vocoder_out"] = pipe.vocoder(spec)

        init = torch.randn((1, 4, 32, 4), generator=g)
        init2 = torch.randn((2, 4, 32, 4), generator=g)
        np.save(ROOT / "init_latents.npy", init.numpy())
        np.save(ROOT / "init_latents_2.npy", init2.numpy())

        ddim = lambda: DDIMScheduler.from_config(pipe.scheduler.config)
        dpms = lambda: DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        dpm3 = lambda: DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, solver_order=3)
        runs = {
            "ddim_cfg": (ddim, 5, 2.5, init, NEGATIVE, 1),
            "ddim_plain": (ddim, 3, 1.0, init, None, 1),
            "dpm_cfg": (dpms, 5, 2.5, init, NEGATIVE, 1),
            "dpm_plain": (dpms, 4, 1.0, init, None, 1),
            "ddim_cfg_two": (ddim, 4, 3.0, init2, None, 2),
            "dpm3_cfg": (dpm3, 6, 2.5, init, NEGATIVE, 1),
        }
        for name, (make, steps, guidance, lat, neg, n) in runs.items():
            refs[f"run_{name}"], refs[f"run_{name}_latents"] = run_pipeline(
                pipe, make(), steps, guidance, lat, neg, n
            )
            meta["runs"][name] = {
                "scheduler": {ddim: "ddim", dpms: "dpm", dpm3: "dpm3"}[make],
                "steps": steps,
                "guidanceScale": guidance,
                "negativePrompt": neg,
                "numWaveforms": n,
                "initLatents": "init_latents.npy" if lat is init else "init_latents_2.npy",
                "duration": 0.016,
            }

        # Audio-to-audio: a decaying chord with a little noise, 256 samples at 16 kHz.
        t = np.arange(256) / 16000.0
        rng = np.random.default_rng(3)
        source = (
            0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 1250 * t) + 0.05 * rng.standard_normal(256)
        ) * np.exp(-t * 40)
        source = source.astype(np.float32)
        refs["a2a_source"] = torch.from_numpy(source)
        mel_src = torch.from_numpy(log_mel(source, 16000, 4, 8, 64))
        refs["a2a_mel"] = mel_src
        for name, make, steps, strength in (("a2a_ddim", ddim, 5, 0.6), ("a2a_dpm", dpms, 5, 0.8)):
            refs[f"run_{name}"], refs[f"run_{name}_latents"] = run_audio_to_audio(
                pipe, make(), mel_src, steps, strength, 2.5, init
            )
            meta["runs"][name] = {
                "scheduler": "ddim" if make is ddim else "dpm",
                "steps": steps,
                "strength": strength,
                "guidanceScale": 2.5,
                "negativePrompt": NEGATIVE,
                "numWaveforms": 1,
                "initLatents": "init_latents.npy",
                "duration": 0.016,
            }

    save_file({k: v.contiguous().float() for k, v in refs.items()}, str(ROOT / "references.safetensors"))
    with open(ROOT / "references.json", "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    print(f"wrote {ROOT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
