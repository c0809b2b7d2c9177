"""PyTorch MT-CLAR: a Siamese multi-task network for few-shot valence/arousal labelling.

One shared encoder embeds both face images of a pair; the embeddings are fused and fed to three
projector heads: similarity (are A and B the same kind of expression?), valence difference
v(A) - v(B) and arousal difference a(A) - a(B). Because the heads only need the two embeddings,
`compare()` runs them on cached embeddings: labelling a video encodes every frame once.

The file is longer than most because it is copied beside saved weights as remote code: both model classes, their
outputs, losses and the pre-load weight check travel together in it.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from torch import nn
from torch.nn import functional as F
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_mtclar import FUSIONS, MTCLARConfig
from .errors import InputFileError, UnsafeModelError
from .weights_safety import SAFETENSORS_ONLY, check_weight_shapes, refuse_pickle_weights

# The parts a fusion (see `FUSIONS`) concatenates, computed from the embeddings of image A and image B.
FUSION_PARTS = {
    "a": lambda emb_a, emb_b: emb_a,
    "b": lambda emb_a, emb_b: emb_b,
    "diff": lambda emb_a, emb_b: emb_a - emb_b,
    "abs_diff": lambda emb_a, emb_b: (emb_a - emb_b).abs(),
    "mul": lambda emb_a, emb_b: emb_a * emb_b,
}


@dataclass
class MTCLAROutput(ModelOutput):
    """
    loss (`torch.FloatTensor` of shape `()`, *optional*):
        Weighted sum of the enabled task losses (present when labels are given).
    loss_components (`torch.FloatTensor` of shape `(4,)`, *optional*):
        Unweighted losses in the order similarity (cross-entropy), contrastive (cosine embedding),
        valence difference, arousal difference; 0 for tasks without labels or disabled.
    task_weights (`torch.FloatTensor` of shape `(4,)`, *optional*):
        The weights used to combine `loss_components`.
    embeddings / embeddings_pair (`torch.FloatTensor` of shape `(batch, embedding_size)`):
        Embeddings of image A and image B.
    similarity_logits (`torch.FloatTensor` of shape `(batch, num_similarity_classes)`):
        Class 1 = similar expressions.
    valence_diff / arousal_diff (`torch.FloatTensor` of shape `(batch,)`):
        Estimates of v(A) - v(B) and a(A) - a(B), already squashed to the label difference range.
    """

    loss: torch.FloatTensor | None = None
    loss_components: torch.FloatTensor | None = None
    task_weights: torch.FloatTensor | None = None
    embeddings: torch.FloatTensor | None = None
    embeddings_pair: torch.FloatTensor | None = None
    similarity_logits: torch.FloatTensor | None = None
    valence_diff: torch.FloatTensor | None = None
    arousal_diff: torch.FloatTensor | None = None


@dataclass
class MTCLARAffectOutput(ModelOutput):
    """
    loss (`torch.FloatTensor` of shape `()`, *optional*):
        Cross-entropy on the expression plus the dynamic MSE/CCC losses on valence and arousal.
    logits (`torch.FloatTensor` of shape `(batch, num_expression_classes)`):
        AffectNet expression logits (0 Neutral ... 7 Contempt), under the name transformers' image-classification
        pipeline reads.
    valence / arousal (`torch.FloatTensor` of shape `(batch,)`):
        Predictions, in [label_min, label_max] unless `sl_output_activation="identity"`.
    embeddings (`torch.FloatTensor` of shape `(batch, embedding_size)`):
        The encoder embedding of each image.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    valence: torch.FloatTensor | None = None
    arousal: torch.FloatTensor | None = None
    embeddings: torch.FloatTensor | None = None


def ccc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - concordance correlation coefficient (population moments), computed over the batch.

    Undefined for fewer than two samples, where it is 0 so that a last batch of one is harmless.
    """
    pred, target = pred.float().reshape(-1), target.float().reshape(-1)
    if pred.numel() < 2:
        return pred.sum() * 0.0
    pred_mean, target_mean = pred.mean(), target.mean()
    covariance = ((pred - pred_mean) * (target - target_mean)).mean()
    denominator = pred.var(unbiased=False) + target.var(unbiased=False) + (pred_mean - target_mean) ** 2
    return 1.0 - 2.0 * covariance / (denominator + 1e-8)


def dynamic_regression_loss(
    pred: torch.Tensor, target: torch.Tensor, epoch_progress: float | None, exponent: float = 2.0
) -> torch.Tensor:
    """The reference's `w1 * MSE + (1 - w1) * (1 - CCC)` with `w1 = epoch_progress ** exponent`.

    CCC dominates early in training (it shapes the correlation), MSE late (it fixes the scale).
    `epoch_progress=None` (no schedule, e.g. a quick evaluation) weighs the two equally.
    """
    w_mse = 0.5 if epoch_progress is None else float(min(max(epoch_progress, 0.0), 1.0)) ** exponent
    mse = F.mse_loss(pred.float().reshape(-1), target.float().reshape(-1))
    return w_mse * mse + (1.0 - w_mse) * ccc_loss(pred, target)


def random_convex_weights(num: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """`num` weights drawn from U(0, 1) and normalised to sum to 1 (the per-batch task weights)."""
    weights = torch.rand(num, generator=generator).clamp_min(1e-6)
    return (weights / weights.sum()).to(device)


def pool_backbone_output(outputs) -> torch.Tensor:
    """One vector per image from a transformers backbone, whatever its pooling convention."""
    pooled = getattr(outputs, "pooler_output", None)
    if pooled is None:
        hidden = outputs.last_hidden_state
        pooled = hidden.mean(dim=(2, 3)) if hidden.dim() == 4 else hidden.mean(dim=1)
    return pooled.flatten(1)


def backbone_output_size(backbone_config) -> int:
    """Width of the pooled output of a transformers backbone, read from its config."""
    hidden_sizes = getattr(backbone_config, "hidden_sizes", None)
    if hidden_sizes:
        return int(hidden_sizes[-1])
    hidden_size = getattr(backbone_config, "hidden_size", None)
    if hidden_size:
        return int(hidden_size)
    raise ValueError(f"cannot tell the output width of a {type(backbone_config).__name__} backbone")


class ProjectorMLP(nn.Module):
    """Blocks of [Dropout -> Linear -> BatchNorm1d -> ReLU], then Dropout -> Linear (the reference's heads)."""

    def __init__(self, in_features: int, widths: list[int], out_features: int, dropout: float, bias: bool = True):
        super().__init__()
        layers = []
        for width in widths:
            layers += [nn.Dropout(dropout), nn.Linear(in_features, width, bias=bias), nn.BatchNorm1d(width), nn.ReLU()]
            in_features = width
        layers += [nn.Dropout(dropout), nn.Linear(in_features, out_features)]
        self.layers = nn.Sequential(*layers)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.layers(hidden)


class MTCLARPreTrainedModel(PreTrainedModel):
    config: MTCLARConfig
    config_class = MTCLARConfig
    # Both models hold the shared encoder under this name (the state-dict keys `encoder.*`), so a checkpoint of the
    # bare backbone loads into it.
    base_model_prefix = "encoder"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = []

    def _init_weights(self, module):
        # Only our own heads: transformers backbones dispatch to their own init, and the EmoFAN encoder
        # (Conv2d/BatchNorm2d only) keeps PyTorch's init or its converted pretrained weights.
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """As `PreTrainedModel.from_pretrained`, but safetensors only: pickle weights are never unpickled, and a
        local folder's weights must match its config.json (see `check_saved_weights`)."""
        if kwargs.setdefault("use_safetensors", True) is not True:
            raise UnsafeModelError(f"{pretrained_model_name_or_path}: {SAFETENSORS_ONLY}")
        folder = Path(pretrained_model_name_or_path)
        if folder.is_dir() and (folder / "config.json").is_file():
            check_saved_weights(folder)
        try:
            model = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except OSError as err:
            if "safetensors" in str(err).lower() or ".bin" in str(err):
                raise UnsafeModelError(f"{pretrained_model_name_or_path}: {SAFETENSORS_ONLY}") from err
            raise
        # Loading replaces parameters with fresh ones that require grad: re-apply the reference's frozen trunk.
        if model.config.encoder == "emofan" and model.config.freeze_encoder_trunk:
            model.encoder.freeze_trunk()
        return model

    def _build_encoder(self, config: MTCLARConfig) -> None:
        """`self.encoder` (shared by both images of a pair) and the projection to `embedding_size`."""
        if config.encoder == "emofan":
            from .modeling_emofan import EmoFANEncoder

            self.encoder = EmoFANEncoder(config)
            encoder_size = self.encoder.output_size
            if config.freeze_encoder_trunk:
                self.encoder.freeze_trunk()
        else:
            self.encoder = AutoModel.from_config(config.backbone_config)
            encoder_size = backbone_output_size(config.backbone_config)
        needs_projection = encoder_size != config.embedding_size
        self.embedding_projection = (
            nn.Linear(encoder_size, config.embedding_size) if needs_projection else nn.Identity()
        )

    def _build_affect_head(self, config: MTCLARConfig) -> None:
        """The MT-CLAR+SL head on embeddings: [Linear -> BatchNorm -> ReLU] per hidden width, then expression logits
        and valence/arousal from two Linear layers (EmoNet's single output layer splits row-wise into the two)."""
        layers, in_features = [], config.embedding_size
        for width in config.sl_hidden_widths:
            layers += [nn.Linear(in_features, width, bias=config.sl_hidden_bias), nn.BatchNorm1d(width), nn.ReLU()]
            in_features = width
        self.affect_mlp = nn.Sequential(*layers)
        self.expression_head = nn.Linear(in_features, config.num_expression_classes)
        self.va_head = nn.Linear(in_features, 2)

    @property
    def has_affect_head(self) -> bool:
        return hasattr(self, "affect_mlp")

    def predict_affect(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Expression logits, valence and arousal of embeddings from `embed()` (the SL head)."""
        if not self.has_affect_head:
            raise AttributeError(f"{type(self).__name__} has no affect head (config.affect_head is False)")
        hidden = self.affect_mlp(embeddings)
        va = self.va_head(hidden)
        if self.config.sl_output_activation == "tanh":
            half_range = (self.config.label_max - self.config.label_min) / 2
            centre = (self.config.label_max + self.config.label_min) / 2
            va = centre + half_range * torch.tanh(va)
        return self.expression_head(hidden), va[:, 0], va[:, 1]

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Embeddings `(batch, embedding_size)` of single face images `(batch, 3, H, W)` in [0, 1]."""
        if self.config.encoder == "emofan":
            features = self.encoder(pixel_values)
        else:
            features = pool_backbone_output(self.encoder(pixel_values=pixel_values))
        return self.embedding_projection(features)


class MTCLARModel(MTCLARPreTrainedModel):
    """MT-CLAR: shared encoder, fusion, and the similarity / valence-difference / arousal-difference heads.

    Example:
    ```python
    >>> import torch
    >>> from mtclar_hf import MTCLARConfig, MTCLARModel
    >>> model = MTCLARModel(MTCLARConfig()).eval()
    >>> a, b = torch.rand(2, 3, 256, 256), torch.rand(2, 3, 256, 256)
    >>> out = model(a, b)                                   # out.valence_diff ~ v(a) - v(b)
    >>> same = model.compare(model.embed(a), model.embed(b))  # heads only, on cached embeddings
    ```
    """

    main_input_name = "pixel_values_a"

    def __init__(self, config: MTCLARConfig):
        super().__init__(config)
        self._build_encoder(config)
        fused_size = config.embedding_size * len(FUSIONS[config.fusion])
        widths, dropout = config.projector_widths, config.dropout
        difference_widths = widths if config.difference_head_widths is None else config.difference_head_widths
        self.similarity_head = ProjectorMLP(fused_size, widths, config.num_similarity_classes, dropout)
        self.valence_head = ProjectorMLP(fused_size, difference_widths, 1, dropout)
        self.arousal_head = ProjectorMLP(fused_size, difference_widths, 1, dropout)
        if config.affect_head:
            self._build_affect_head(config)
        self.post_init()

    def fuse(self, emb_a: torch.Tensor, emb_b: torch.Tensor) -> torch.Tensor:
        """The pair vector the heads read: the parts of `config.fusion`, concatenated."""
        parts = FUSIONS[self.config.fusion]
        return torch.cat([FUSION_PARTS[part](emb_a, emb_b) for part in parts], dim=-1)

    def _squash(self, raw: torch.Tensor) -> torch.Tensor:
        raw = raw.squeeze(-1)
        if self.config.diff_activation == "tanh":
            return self.config.difference_scale * torch.tanh(raw)
        return raw

    def compare(self, emb_a: torch.Tensor, emb_b: torch.Tensor) -> MTCLAROutput:
        """Run fusion and the three heads on embeddings from `embed()`; no encoder pass."""
        fused = self.fuse(emb_a, emb_b)
        return MTCLAROutput(
            embeddings=emb_a,
            embeddings_pair=emb_b,
            similarity_logits=self.similarity_head(fused),
            valence_diff=self._squash(self.valence_head(fused)),
            arousal_diff=self._squash(self.arousal_head(fused)),
        )

    def task_weights_for_batch(self, device, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random convex weights over the enabled tasks in training, equal weights otherwise. A seeded
        `generator` gives every process of a distributed run the same draw for the same batch."""
        all_tasks = self.config.all_tasks
        enabled = torch.zeros(len(all_tasks), device=device)
        enabled[[all_tasks.index(task) for task in self.config.tasks]] = 1.0
        if self.training and self.config.random_task_weights:
            weights = random_convex_weights(len(all_tasks), device=device, generator=generator) * enabled
        else:
            weights = enabled
        return weights / weights.sum()

    def compute_loss(
        self,
        output: MTCLAROutput,
        similarity_labels: torch.Tensor | None,
        valence_diff_labels: torch.Tensor | None,
        arousal_diff_labels: torch.Tensor | None,
        epoch_progress: float | None,
        task_weights: torch.Tensor | None,
    ) -> MTCLAROutput:
        device = output.valence_diff.device
        components = torch.zeros(len(self.config.all_tasks), device=device)
        if similarity_labels is not None:
            similarity_labels = similarity_labels.long().to(device)
            components[0] = F.cross_entropy(output.similarity_logits.float(), similarity_labels)
            # CosineEmbeddingLoss wants +1 for similar pairs and -1 for dissimilar ones.
            cosine_target = similarity_labels.clamp(max=1) * 2 - 1
            components[1] = F.cosine_embedding_loss(
                output.embeddings.float(), output.embeddings_pair.float(), cosine_target, margin=self.config.cosine_margin
            )
        exponent = self.config.dynamic_loss_exponent
        if valence_diff_labels is not None:
            components[2] = dynamic_regression_loss(output.valence_diff, valence_diff_labels.to(device), epoch_progress, exponent)
        if arousal_diff_labels is not None:
            components[3] = dynamic_regression_loss(output.arousal_diff, arousal_diff_labels.to(device), epoch_progress, exponent)
        weights = self.task_weights_for_batch(device) if task_weights is None else task_weights.to(device)
        output.loss = (weights * components).sum()
        output.loss_components = components.detach()
        output.task_weights = weights.detach()
        return output

    def forward(
        self,
        pixel_values_a: torch.Tensor,
        pixel_values_b: torch.Tensor,
        similarity_labels: torch.Tensor | None = None,
        valence_diff_labels: torch.Tensor | None = None,
        arousal_diff_labels: torch.Tensor | None = None,
        epoch_progress: float | None = None,
        task_weights: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MTCLAROutput | tuple:
        r"""
        pixel_values_a / pixel_values_b (`torch.FloatTensor` of shape `(batch, 3, image_size, image_size)`):
            The two face images of each pair, RGB in [0, 1] (see `MTCLARImageProcessor`).
        similarity_labels (`torch.LongTensor` of shape `(batch,)`, *optional*):
            1 when the pair shows similar expressions, 0 otherwise.
        valence_diff_labels / arousal_diff_labels (`torch.FloatTensor` of shape `(batch,)`, *optional*):
            v(A) - v(B) and a(A) - a(B).
        epoch_progress (`float`, *optional*):
            `epoch / max_epochs`, which moves the difference losses from CCC towards MSE.
        task_weights (`torch.FloatTensor` of shape `(4,)`, *optional*):
            Weights of the four task losses; by default drawn at random in training mode, equal in eval mode.
        """
        # Both images go through the SAME encoder in one batch: one call, shared weights, BatchNorm statistics
        # over the whole pair batch.
        embeddings = self.embed(torch.cat([pixel_values_a, pixel_values_b], dim=0))
        emb_a, emb_b = embeddings.split(pixel_values_a.shape[0], dim=0)
        output = self.compare(emb_a, emb_b)
        has_labels = any(x is not None for x in (similarity_labels, valence_diff_labels, arousal_diff_labels))
        if has_labels:
            output = self.compute_loss(
                output, similarity_labels, valence_diff_labels, arousal_diff_labels, epoch_progress, task_weights
            )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


class MTCLARForAffectPrediction(MTCLARPreTrainedModel):
    """MT-CLAR+SL: the (MT-CLAR-trained) encoder with a supervised MLP for expression, valence and arousal.

    Example:
    ```python
    >>> from mtclar_hf import MTCLARForAffectPrediction
    >>> model = MTCLARForAffectPrediction.from_mtclar("path/to/mtclar-model", freeze_encoder=True)
    ```
    """

    def __init__(self, config: MTCLARConfig):
        super().__init__(config)
        self._build_encoder(config)
        self._build_affect_head(config)
        if config.expression_class_weights is not None:
            self.register_buffer(
                "expression_class_weights", torch.tensor(config.expression_class_weights, dtype=torch.float32), persistent=False
            )
        else:
            self.expression_class_weights = None
        self.post_init()

    @classmethod
    def from_mtclar(cls, model_or_path, freeze_encoder: bool = True, **config_overrides) -> "MTCLARForAffectPrediction":
        """Build MT-CLAR+SL on the encoder of a trained `MTCLARModel` (instance or saved folder / Hub id)."""
        source = model_or_path if isinstance(model_or_path, MTCLARModel) else MTCLARModel.from_pretrained(model_or_path)
        config = MTCLARConfig.from_dict({**source.config.to_dict(), **config_overrides})
        model = cls(config)
        model.encoder.load_state_dict(source.encoder.state_dict())
        model.embedding_projection.load_state_dict(source.embedding_projection.state_dict())
        if freeze_encoder:
            model.freeze_encoder()
        return model

    def freeze_encoder(self) -> None:
        """Train only the affect head (the MT-CLAR+SL linear-probe-style setting)."""
        for module in (self.encoder, self.embedding_projection):
            module.requires_grad_(False)
            module.eval()

    def compute_loss(
        self,
        output: MTCLARAffectOutput,
        labels: torch.Tensor | None,
        valence: torch.Tensor | None,
        arousal: torch.Tensor | None,
        epoch_progress: float | None,
    ) -> MTCLARAffectOutput:
        """Cross-entropy on the expression plus the dynamic MSE/CCC loss of valence and arousal, over the targets
        given; `output.loss` stays None without any."""
        losses = []
        if labels is not None:
            losses.append(F.cross_entropy(output.logits.float(), labels.long(), weight=self.expression_class_weights))
        exponent = self.config.dynamic_loss_exponent
        for prediction, target in ((output.valence, valence), (output.arousal, arousal)):
            if target is not None:
                losses.append(dynamic_regression_loss(prediction, target, epoch_progress, exponent))
        if losses:
            output.loss = torch.stack(losses).sum()
        return output

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        valence: torch.Tensor | None = None,
        arousal: torch.Tensor | None = None,
        epoch_progress: float | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MTCLARAffectOutput | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch, 3, image_size, image_size)`): RGB in [0, 1].
        labels (`torch.LongTensor` of shape `(batch,)`, *optional*): AffectNet expression class.
        valence / arousal (`torch.FloatTensor` of shape `(batch,)`, *optional*): targets in the label range.
        epoch_progress (`float`, *optional*): `epoch / max_epochs` for the dynamic MSE/CCC weighting.
        """
        embeddings = self.embed(pixel_values)
        logits, valence_pred, arousal_pred = self.predict_affect(embeddings)
        output = MTCLARAffectOutput(logits=logits, valence=valence_pred, arousal=arousal_pred, embeddings=embeddings)
        output = self.compute_loss(output, labels, valence, arousal, epoch_progress)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


def check_saved_weights(folder, architecture: str | None = None) -> dict[str, tuple[int, ...]]:
    """Before loading a saved folder: refuse pickle-only weights, and safetensors weights whose names or shapes differ
    from the model its config.json builds (`architecture`, default: the one the config names).

    transformers would otherwise re-initialise missing or mis-shaped tensors with a warning. The model is built on
    the meta device and only JSON and the safetensors headers are read. Returns the tensor shapes found.
    """
    folder = Path(folder)
    refuse_pickle_weights(folder)
    try:
        config = MTCLARConfig.from_pretrained(folder)
    except (TypeError, ValueError, KeyError, StrictDataclassError) as err:
        raise InputFileError(folder / "config.json", f"not a valid MTCLARConfig: {err}") from None
    model_classes = {cls.__name__: cls for cls in (MTCLARModel, MTCLARForAffectPrediction)}
    architecture = architecture or (config.architectures or [MTCLARModel.__name__])[0]
    if architecture not in model_classes:
        raise UnsafeModelError(f"{folder / 'config.json'}: unknown architecture {architecture!r}")
    with torch.device("meta"):
        model = model_classes[architecture](config)
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    return check_weight_shapes(folder, expected)


__all__ = [
    "MTCLARPreTrainedModel",
    "MTCLARModel",
    "MTCLARForAffectPrediction",
    "MTCLAROutput",
    "MTCLARAffectOutput",
    "ccc_loss",
    "check_saved_weights",
    "dynamic_regression_loss",
    "random_convex_weights",
]
