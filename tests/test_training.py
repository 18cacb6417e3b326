"""Training pieces on real tiny models: LoRA trains only what it should, loss falls, packing isolates
samples, and a saved, reloaded and merged adapter gives the same outputs."""

from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from tasks.train.options import RECIPES_DIR, TrainOptions, load_recipe
from tasks.train.training import (
    DEMO_MODEL_DIR,
    IGNORE_INDEX,
    PaddingCollator,
    TrainError,
    apply_lora,
    build_demo_model,
    load_base_model,
    load_tokenizer,
    lora_targets,
    pack_rows,
    tokenize_examples,
    train_demo_tokenizer,
    trainable_parameter_names,
)

torch.set_num_threads(1)
PAIRS = [
    ("Text: John Smith visited Paris . \nAnswer:", "person: John Smith; location: Paris"),
    ("文本: 张三在北京工作。 \n答案:", "人名: 张三; 地址: 北京"),
    ("Text: It rained all day . \nAnswer:", "None"),
    ("Text: Mary works at Google . \nAnswer:", "person: Mary; organization: Google"),
]


def tiny(config_class, **extra):
    torch.manual_seed(0)
    config = config_class(
        vocab_size=4096,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        **extra,
    )
    return AutoModelForCausalLM.from_config(config)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("demo", trust_remote_code=False)


def test_real_profile_trains_only_lora_on_the_attention_projections():
    real = load_recipe("real")
    assert (
        real.lora_r,
        real.lora_alpha,
        real.lora_dropout,
        real.learning_rate,
        real.warmup_ratio,
        real.scheduler,
        real.epochs,
        real.bf16,
        real.gradient_checkpointing,
    ) == (32, 64, 0.05, 3e-4, 0.02, "cosine", 5, True, True)
    demo = load_recipe("demo")
    assert (demo.bf16, demo.gradient_checkpointing) == (False, False), "the demo trains in float32, as it always did"
    for config_class in (LlamaConfig, Qwen2Config):
        model = apply_lora(tiny(config_class), real)
        names = trainable_parameter_names(model)
        assert names and all("lora_" in name for name in names)
        assert {name.split(".")[-4] for name in names} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert lora_targets("internlm2", "auto") == ["wqkv"]
    with pytest.raises(TrainError, match="no LoRA targets known"):
        lora_targets("gpt_bigcode", "auto")


def test_demo_profile_also_trains_embeddings_and_head_in_full():
    model = apply_lora(build_demo_model(), load_recipe("demo"))
    names = trainable_parameter_names(model)
    assert all("lora_" in name or "modules_to_save" in name for name in names)
    assert any("embed_tokens.modules_to_save" in name for name in names) and any(
        "lm_head.modules_to_save" in name for name in names
    )
    frozen = [name for name, parameter in model.named_parameters() if not parameter.requires_grad]
    assert any("q_proj.base_layer" in name for name in frozen)


def test_demo_model_and_tokenizer_are_deterministic_and_lossless(tokenizer):
    first, second = build_demo_model(seed=3), build_demo_model(seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    assert not torch.equal(next(build_demo_model(seed=4).parameters()), next(first.parameters()))
    for text in [
        "Mr. John Smith flew to São Paulo in 1999 !",
        "华为在广东省深圳市，患者出现头痛。",
        "mixed 混合 😀 \t tabs",
    ]:
        assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    texts = [text for text, _ in PAIRS] * 5
    assert (
        train_demo_tokenizer(texts, 300).backend_tokenizer.to_str()
        == train_demo_tokenizer(texts, 300).backend_tokenizer.to_str()
    )
    assert (DEMO_MODEL_DIR / "config.json").is_file() and (DEMO_MODEL_DIR / "tokenizer.json").is_file()


def test_loss_is_on_answer_tokens_only_and_long_samples_are_dropped(tokenizer):
    prompts, answers = zip(*PAIRS)
    tokenized = tokenize_examples(list(prompts), list(answers), tokenizer, max_length=256)
    for row, prompt, answer in zip(tokenized.rows, prompts, answers):
        labelled = [token for token in row["labels"] if token != IGNORE_INDEX]
        assert tokenizer.decode(labelled) == f" {answer}</s>"
        assert row["labels"][: len(tokenizer(prompt)["input_ids"])] == [IGNORE_INDEX] * len(
            tokenizer(prompt)["input_ids"]
        )
    short = tokenize_examples(list(prompts), list(answers), tokenizer, max_length=12)
    assert short.dropped_too_long == len(PAIRS) and not short.rows


def test_packed_rows_give_each_sample_the_same_logits_as_alone(tokenizer):
    prompts, answers = zip(*PAIRS)
    rows = tokenize_examples(list(prompts), list(answers), tokenizer, max_length=256).rows
    packs = pack_rows(rows, max_length=64)
    assert all(len(pack["input_ids"]) <= 64 for pack in packs) and len(packs) < len(rows)
    assert sum(len(pack["input_ids"]) for pack in packs) == sum(len(row["input_ids"]) for row in rows)
    model = load_base_model("demo", trust_remote_code=False, seed=0, bf16=False).eval()
    collator = PaddingCollator(tokenizer.pad_token_id)
    batch = collator(packs)
    assert "attention_mask" not in batch and collator.padding_fraction > 0
    with torch.no_grad():
        packed_logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        for pack_index, pack in enumerate(packs):
            starts = [position for position, value in enumerate(pack["position_ids"]) if value == 0] + [
                len(pack["input_ids"])
            ]
            for start, end in zip(starts, starts[1:]):
                alone = model(input_ids=torch.tensor([pack["input_ids"][start:end]])).logits[0]
                assert torch.allclose(packed_logits[pack_index, start:end], alone, atol=1e-4)


def test_padded_batches_count_padding(tokenizer):
    rows = tokenize_examples([p for p, _ in PAIRS], [a for _, a in PAIRS], tokenizer, max_length=256).rows
    collator = PaddingCollator(tokenizer.pad_token_id)
    batch = collator(rows)
    real = sum(len(row["input_ids"]) for row in rows)
    assert batch["attention_mask"].sum().item() == real == collator.real_tokens
    assert collator.padding_tokens == batch["input_ids"].numel() - real
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_loss_falls_on_a_tiny_model(tokenizer):
    torch.manual_seed(0)
    model = apply_lora(build_demo_model(), load_recipe("demo"))
    rows = tokenize_examples([p for p, _ in PAIRS], [a for _, a in PAIRS], tokenizer, max_length=256).rows
    batch = PaddingCollator(tokenizer.pad_token_id)(rows)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(25):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_saved_reloaded_and_merged_adapter_give_the_same_outputs(tmp_path, tokenizer):
    from peft import PeftModel

    hyper = load_recipe("real")
    model = apply_lora(tiny(LlamaConfig), hyper)
    with torch.no_grad():  # a trained-looking adapter: LoRA's B starts at zero, which would prove nothing
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                parameter.add_(torch.randn_like(parameter) * 0.05)
    model.eval()
    inputs = torch.tensor([tokenizer(PAIRS[0][0])["input_ids"]])
    with torch.no_grad():
        expected = model(input_ids=inputs).logits
    model.save_pretrained(tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(tiny(LlamaConfig), tmp_path / "adapter").eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=inputs).logits, expected, atol=1e-5)
        merged = reloaded.merge_and_unload()
        assert torch.allclose(merged(input_ids=inputs).logits, expected, atol=1e-4)
        assert not torch.allclose(tiny(LlamaConfig)(input_ids=inputs).logits, expected, atol=1e-4)


def test_options_refuse_bad_values():
    with pytest.raises(ValueError, match="launcher"):
        TrainOptions(launcher="mpirun")
    with pytest.raises(ValueError, match="hostfile"):
        TrainOptions(launcher="deepspeed", num_nodes=2)
    assert TrainOptions(profile="real", learning_rate=1e-4).hyperparameters().learning_rate == 1e-4
    assert TrainOptions(profile="real").hyperparameters().base_model == "internlm/internlm2-7b"


def test_a_recipe_is_a_flat_yaml_file_and_a_wrong_key_names_the_file(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text((RECIPES_DIR / "real.yaml").read_text().replace("epochs: 5", "epochs: 2"))
    assert TrainOptions(profile=str(mine)).hyperparameters() == replace(load_recipe("real"), epochs=2)
    assert TrainOptions(profile="real", epochs=3).hyperparameters().epochs == 3  # params.yaml overrides a recipe
    mine.write_text((RECIPES_DIR / "real.yaml").read_text().replace("epochs: 5", "epoch: 5"))
    with pytest.raises(ValueError, match=r"mine.yaml: unknown keys \['epoch'\], missing keys \['epochs'\]"):
        TrainOptions(profile=str(mine))
    with pytest.raises(ValueError, match=r"profile must be one of \('demo', 'real'\) or a YAML recipe file"):
        TrainOptions(profile="large")
