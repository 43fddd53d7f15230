"""The protocol of a study: the choices where hskd departs from the paper's released code
(llyx97/Marginal-Utility-Diminishes), each settable on its own. ``paper`` makes every choice as that code
does; ``hskd`` is this pipeline's own. Choices that are strategies of their own (batch-level magnitude,
Bernoulli dims) are cell schemes instead, so both can sit in one study."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

RANKINGS = ("last_layer", "mapped_layer", "uniform_layer")
CHOICES = {
    # padding in the HSK loss: masked (batches padded per batch) | included (padded to max_seq_length, the
    # MSE covers every position of the selected tokens, padding too)
    "hsk_padding": ("masked", "included"),
    # attention_nosep: [SEP] ranked above padding | below it
    "sep_rank": ("above_padding", "below_padding"),
    # which teacher attention ranks a distilled layer's tokens (`Cell.ranking_layers`): the last layer's for
    # every layer | the layer that produced the distilled hidden state (the paper's length sweeps,
    # --att_ttop12 False) | the layer a uniform map over every teacher layer gives the student layer (the
    # paper's joint runs, --att_ttop12 True); the last two keep one token set per distilled layer
    "token_ranking": RANKINGS,
    # the same choice for the joint cells (grid.joint): the paper ranked them otherwise than its sweeps
    "joint_token_ranking": RANKINGS,
    # the [CLS] row averaged over heads: of attention probabilities | of their logarithms, which ranks like
    # the paper's pre-softmax scores
    "token_score": ("probability", "logit"),
    # stage-2 soft cross-entropy: summed over classes, mean over the batch | mean over batch x classes
    "soft_ce": ("per_example", "per_class"),
    # stage-2 target of a regression task (STS-B): the teacher's output | the gold label
    "regression_target": ("teacher", "gold"),
}


@dataclass(frozen=True)
class Protocol:
    name: str
    hsk_padding: str
    sep_rank: str
    token_ranking: str
    joint_token_ranking: str
    token_score: str
    soft_ce: str
    regression_target: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @property
    def pads_to_max(self) -> bool:
        """Whether HSK batches are padded to max_seq_length and padding counts in the loss."""
        return self.hsk_padding == "included"

    @property
    def sep_below_padding(self) -> bool:
        return self.sep_rank == "below_padding"

    @property
    def per_layer_tokens(self) -> bool:
        return self.token_ranking != "last_layer"

    def for_cell(self, joint: bool) -> Protocol:
        """The choices a cell's store and runs use: a joint cell ranks its tokens by `joint_token_ranking`."""
        return replace(self, token_ranking=self.joint_token_ranking) if joint else self

    def store_metadata(self) -> dict[str, str]:
        """The choices that change a store's content: a store built under others is refused."""
        return {key: getattr(self, key) for key in STORE_CHOICES}


PRESETS = {
    "hskd": Protocol("hskd", "masked", "above_padding", "last_layer", "last_layer", "probability", "per_example",
                     "teacher"),
    "paper": Protocol("paper", "included", "below_padding", "mapped_layer", "uniform_layer", "logit", "per_class",
                      "gold"),
}
STORE_CHOICES = ("hsk_padding", "sep_rank", "token_ranking", "token_score")


def resolve(name: str, overrides: dict[str, str | None] | None = None) -> Protocol:
    """The preset `name` with each non-null override applied; ValueError naming the bad key."""
    if name not in PRESETS:
        raise ValueError(f"protocol: {name!r} is not one of {', '.join(PRESETS)}")
    protocol = PRESETS[name]
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in CHOICES:
            raise ValueError(f"protocol_choices.{key}: unknown choice (known: {', '.join(CHOICES)})")
        if value not in CHOICES[key]:
            raise ValueError(f"protocol_choices.{key}: {value!r} is not one of {', '.join(CHOICES[key])}")
        protocol = replace(protocol, **{key: value})
    return protocol


def from_dict(values: dict[str, str]) -> Protocol:
    """A Protocol from `as_dict` output (how the CLI receives it), every choice checked."""
    unknown = sorted(set(values) - {"name", *CHOICES})
    if unknown or set(CHOICES) - set(values):
        raise ValueError(f"protocol needs exactly the keys name, {', '.join(CHOICES)}; got {sorted(values)}")
    return resolve(values["name"], {key: value for key, value in values.items() if key != "name"})
